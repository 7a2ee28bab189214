package secure

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/slimnet/slim/internal/testenv"

	"github.com/cilium/ebpf"

	prebuilt "github.com/slimnet/slim/embed"
)

func TestCgroup2MountOnThisHost(t *testing.T) {
	point, err := Cgroup2Mount()
	if err != nil {
		testenv.KernelFeature(t, "cgroup v2", err)
	}
	info, err := os.Stat(point)
	if err != nil || !info.IsDir() {
		t.Fatalf("cgroup2 mount point %q is not a directory: %v", point, err)
	}
	if _, err := os.Stat(point + "/cgroup.procs"); err != nil {
		t.Errorf("%s does not look like a cgroup v2 hierarchy: %v", point, err)
	}
}

func TestProbeReportListsEveryFeature(t *testing.T) {
	fs := Probe()
	report := fs.String()
	t.Logf("features:\n%s", report)
	for _, f := range fs.All() {
		if !strings.Contains(report, f.Name) {
			t.Errorf("report does not mention %q", f.Name)
		}
	}
	if lines := strings.Count(report, "\n"); lines != len(fs.All()) {
		t.Errorf("report has %d lines, want one per feature (%d)", lines, len(fs.All()))
	}
}

// TestLoadEmbeddedPrograms loads the bpf2go-generated programs into the
// kernel, proving that the committed object matches what the kernel's
// verifier accepts.
func TestLoadEmbeddedPrograms(t *testing.T) {
	testenv.Integration(t)
	if f := Probe().CgroupSockAddr; !f.Present {
		testenv.KernelFeature(t, f.Name, errors.New(f.State()))
	}
	var objs prebuilt.SecureObjects
	if err := prebuilt.LoadSecureObjects(&objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("verifier: %+v", ve)
		}
		t.Fatalf("load secure mode's programs: %v", err)
	}
	objs.Close()
}
