package cni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/registration"
)

// routerTimeout bounds each call to the router: a router that does not
// answer is treated as down, and its record makes up for the call.
const routerTimeout = 3 * time.Second

// nameFor picks the container's name at the router: its ID (the first 12
// characters of a long one, as docker shows them), with the interface if
// it is not eth0; the whole ID if the short one is another attachment's.
func (n *network) nameFor(a attachment) string {
	name := a.id
	if len(name) > 32 {
		name = name[:12]
	}
	if a.ifname != "eth0" {
		name += "-" + a.ifname
	}
	if len(name) > 63 || registration.CheckName(name) != nil {
		name = hostVethName(a) // an interface name that makes a poor file name
	}
	if rec, err := registration.Read(n.router.Dir, name); err == nil && (rec.ContainerID != a.id || rec.IfName != a.ifname) {
		name = a.id[:min(len(a.id), 63)]
	}
	return name
}

// recordOf finds the attachment's record.
func (n *network) recordOf(a attachment) (registration.Record, bool) {
	records, _ := registration.List(n.router.Dir)
	for _, rec := range records {
		if rec.ContainerID == a.id && rec.IfName == a.ifname {
			return rec, true
		}
	}
	return registration.Record{}, false
}

// register saves the container's record (the router reads it at start and
// every few seconds) and asks the router to serve it now. A router that is
// down is no error: the record waits for it. A router that refuses is.
func (n *network) register(a attachment, netnsPath string, addr netip.Addr) error {
	var st unix.Stat_t
	if err := unix.Stat(netnsPath, &st); err != nil {
		return fmt.Errorf("network namespace %s: %w", netnsPath, err)
	}
	rec := registration.Record{
		Name: n.nameFor(a), Netns: netnsPath, NetnsInode: st.Ino, Addr: addr,
		ContainerID: a.id, IfName: a.ifname, Added: time.Now().UTC(),
	}
	if err := registration.Write(n.router.Dir, rec); err != nil {
		return err
	}
	spec := control.ContainerSpec{Name: rec.Name, Netns: netnsPath, Addr: addr.String(), ContainerID: a.id, IfName: a.ifname}
	err := n.callRouter(func(ctx context.Context, c *control.Client) error {
		_, err := c.ContainerAdd(ctx, spec)
		return err
	})
	var refused *control.ReplyError
	switch {
	case errors.As(err, &refused):
		registration.Remove(n.router.Dir, rec.Name)
		return pluginError(ErrRouterRefused, "the slim router refused container %s: %s", rec.Name, refused.Text)
	case err != nil:
		fmt.Fprintf(os.Stderr, "slim: the router is not answering (%v): container %s has its overlay network now and is accelerated once the router runs\n", err, rec.Name)
	}
	return nil
}

// unregister removes the attachment's record and tells the router, which
// resets the container's accelerated connections. Neither a missing record
// nor a router that is down is an error.
func (n *network) unregister(a attachment) error {
	rec, ok := n.recordOf(a)
	if !ok {
		return nil
	}
	if _, err := registration.Remove(n.router.Dir, rec.Name); err != nil {
		return err
	}
	err := n.callRouter(func(ctx context.Context, c *control.Client) error {
		_, err := c.ContainerDel(ctx, rec.Name)
		return err
	})
	var refused *control.ReplyError
	if errors.As(err, &refused) {
		fmt.Fprintf(os.Stderr, "slim: the router did not unregister container %s: %s\n", rec.Name, refused.Text)
	}
	return nil
}

// callRouter runs f on a control connection to the router.
func (n *network) callRouter(f func(context.Context, *control.Client) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), routerTimeout)
	defer cancel()
	c, err := control.Dial(ctx, n.router.ControlPath())
	if err != nil {
		return err
	}
	defer c.Close()
	return f(ctx, c)
}

// routerSnapshot asks the router for its state.
func (n *network) routerSnapshot() (control.Snapshot, error) {
	var snap control.Snapshot
	err := n.callRouter(func(ctx context.Context, c *control.Client) error {
		var err error
		snap, err = c.Snapshot(ctx)
		return err
	})
	return snap, err
}
