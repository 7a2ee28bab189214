package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/slimnet/slim/router/directory"
)

// readiness waits until a server that was just started is ready for its
// client, for at most serverReadyTimeout.
type readiness func(ctx context.Context, s *sample, srv *server) error

// acceptsOn is ready once the server accepts TCP connections on port at
// the scenario's server address. It probes from the client's namespace,
// the way the client will connect, so it suits servers that shrug off a
// connection that closes at once.
//
// In an accelerated column it is ready once the client's router also
// lists the listener as accepted from: a client that comes while the
// listener's entry is on its way takes the overlay (as it may for a
// user), and the sample would measure that instead of the host path.
func acceptsOn(port int) readiness {
	return func(ctx context.Context, s *sample, srv *server) error {
		target := netip.AddrPortFrom(s.ServerAddr, uint16(port))
		err := poll(ctx, srv, "accept connections on "+target.String(), func() error {
			return s.Client.Do(func() error {
				conn, err := net.DialTimeout("tcp", target.String(), 250*time.Millisecond)
				if err != nil {
					return err
				}
				return conn.Close()
			})
		})
		if err != nil || s.ClientDirectory == "" {
			return err
		}
		table := directory.NewReader(s.ClientDirectory, nil)
		defer table.Close()
		return poll(ctx, srv, "be listed in "+s.ClientDirectory+" as accepted from", func() error {
			if host, found := table.Lookup(target); !found || host.Port() == 0 {
				return fmt.Errorf("%v is not listed with a host listener", target)
			}
			return nil
		})
	}
}

// printed is ready once the server has printed marker, for servers that
// announce they listen and that a probe connection would disturb.
func printed(marker string) readiness {
	return func(ctx context.Context, s *sample, srv *server) error {
		return poll(ctx, srv, fmt.Sprintf("print %q", marker), func() error {
			if !bytes.Contains(srv.output.Bytes(), []byte(marker)) {
				return fmt.Errorf("not yet")
			}
			return nil
		})
	}
}

// poll calls check until it succeeds, the server exits, ctx is cancelled
// or serverReadyTimeout passes.
func poll(ctx context.Context, srv *server, what string, check func() error) error {
	deadline := time.Now().Add(serverReadyTimeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if srv.exited() {
			return fmt.Errorf("%s exited instead of getting ready to %s (%s)", srv.name, what, srv.exitReport())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not %s within %v: %v", srv.name, what, serverReadyTimeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
