package e2e

import (
	"errors"
	"testing"

	"github.com/slimnet/slim/internal/testenv"
	"github.com/slimnet/slim/secure"
)

// requireSecureMode skips, naming the missing kernel feature, when secure
// mode cannot run here.
func requireSecureMode(t *testing.T) {
	t.Helper()
	for _, f := range secure.Probe().Missing() {
		testenv.KernelFeature(t, f.Name+" (secure mode needs it)", errors.New(f.State()))
	}
}
