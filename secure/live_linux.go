package secure

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The host sockets the router made that are still open (slim_live in
// secure.c): the router adds each socket it marks, sock_ops adds the
// connections host listeners accept, and the sock_release program removes
// each as its last file closes. A clean stop takes secure mode out of the
// kernel only when none is left.

// trackSocket records a host socket the router made until its release.
func (d *Datapath) trackSocket(fd int) error {
	cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		return fmt.Errorf("secure mode: socket cookie: %w", err)
	}
	if err := d.objs.SlimLive.Update(cookie, uint8(1), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("secure mode: tracking the socket: %w", err)
	}
	return nil
}

// trackCookies records host sockets the router made, by cookie, in one
// batch.
func (d *Datapath) trackCookies(cookies []uint64) error {
	if len(cookies) == 0 {
		return nil
	}
	ones := make([]uint8, len(cookies))
	for i := range ones {
		ones[i] = 1
	}
	_, err := d.objs.SlimLive.BatchUpdate(cookies, ones, &ebpf.BatchOptions{ElemFlags: uint64(ebpf.UpdateAny)})
	if errors.Is(err, ebpf.ErrNotSupported) { // no batch operations: one at a time
		for _, cookie := range cookies {
			if err = d.objs.SlimLive.Update(cookie, uint8(1), ebpf.UpdateAny); err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("secure mode: tracking the sockets: %w", err)
	}
	return nil
}

// LiveSockets counts the host sockets the router made (and their
// listeners accepted) that are still open. Complete is false when some
// were never tracked (the table was full, or an older router made them):
// then the count says nothing about whether any is left.
func (d *Datapath) LiveSockets() (count int, complete bool, err error) {
	if count, err = countKeys(d.objs.SlimLive); err != nil {
		return 0, false, fmt.Errorf("secure mode: counting open sockets: %w", err)
	}
	var lost uint64
	if err := d.objs.SlimLiveLost.Lookup(uint32(0), &lost); err != nil {
		return 0, false, fmt.Errorf("secure mode: counting open sockets: %w", err)
	}
	return count, lost == 0, nil
}

// missedSockets records that some open sockets are not tracked.
func (d *Datapath) missedSockets() error {
	return d.objs.SlimLiveLost.Update(uint32(0), uint64(1), ebpf.UpdateAny)
}

// countKeys counts the entries of slim_live.
func countKeys(live *ebpf.Map) (int, error) {
	var (
		cookie uint64
		value  uint8
		count  int
	)
	it := live.Iterate()
	for it.Next(&cookie, &value) {
		count++
	}
	return count, it.Err()
}
