package oci

import (
	"context"
	"path/filepath"
	"time"

	"github.com/slimnet/slim/control"
)

// secureTimeout bounds the question to the router: a container's start
// waits for it.
const secureTimeout = 2 * time.Second

// routerSecure asks the router, on its control socket, whether it runs in
// secure mode. The router's shim socket would not say: it answers its
// containers only, not the host's processes. A router that does not
// answer counts as plain (a shim whose router comes back in secure mode
// is refused host sockets, says so, and uses the overlay).
func routerSecure(routerDir string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), secureTimeout)
	defer cancel()
	client, err := control.Dial(ctx, filepath.Join(routerDir, "control.sock"))
	if err != nil {
		return false
	}
	defer client.Close()
	snapshot, err := client.Snapshot(ctx)
	return err == nil && snapshot.Router.Secure != nil
}
