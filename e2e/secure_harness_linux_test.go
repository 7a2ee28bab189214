package e2e

import (
	"testing"

	"github.com/slimnet/slim/secure"
)

// requireSecureMode skips, naming the missing kernel feature, when secure
// mode cannot run here.
func requireSecureMode(t *testing.T) {
	t.Helper()
	fs := secure.Probe()
	for _, f := range fs.All() {
		if f.Required && !f.Present {
			t.Skipf("secure mode needs %s: %s", f.Name, f.State())
		}
	}
}
