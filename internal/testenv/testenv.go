package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// StrictEnv is the environment variable that turns strict mode on.
const StrictEnv = "SLIM_TEST_STRICT"

// Strict reports whether missing tools and privileges fail tests.
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// Integration skips t in -short mode and requires root.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		missing(t, "needs root (network namespaces, cgroups, BPF)")
	}
}

// Tools requires every named program on PATH.
func Tools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, "tool not found: "+tool+" (make deps installs it)")
		}
	}
}

// Require fails (strict) or skips t with reason when ok is false: for
// prerequisites other than tools that make deps provides.
func Require(t testing.TB, ok bool, reason string) {
	t.Helper()
	if !ok {
		missing(t, reason)
	}
}

// KernelFeature skips t because the running kernel lacks feature; this is
// the one skip strict mode allows. why says how the test found out.
func KernelFeature(t testing.TB, feature string, why error) {
	t.Helper()
	t.Skipf("kernel feature missing: %s (%v)", feature, why)
}

func missing(t testing.TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("strict mode (%s=1): %s", StrictEnv, reason)
	}
	t.Skip(reason)
}
