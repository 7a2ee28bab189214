package supervise

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// dialer asks the program's router dialer (secure mode; slim exec starts
// it, internal/launch/dialer_linux.go) for a router connection made in the
// program's name, over their link.
type dialer struct {
	mu      sync.Mutex
	link    int
	timeout time.Duration
}

// errNoDialer says the dialer is gone (the program exited, or it was
// killed): no new router connection can be had.
var errNoDialer = errors.New("the program's router dialer is gone")

// dial returns a new connection to the router.
func (d *dialer) dial() (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.link < 0 {
		return -1, errNoDialer
	}
	if _, err := unix.Write(d.link, []byte{1}); err != nil {
		d.gone()
		return -1, errNoDialer
	}
	fds := []unix.PollFd{{Fd: int32(d.link), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, int(d.timeout.Milliseconds())); err != nil || n == 0 {
		// An answer that comes late would be taken for the next one.
		d.gone()
		return -1, fmt.Errorf("the router dialer did not answer within %v", d.timeout)
	}
	buf := make([]byte, 128)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(d.link, buf, oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
	if err != nil || n == 0 {
		d.gone()
		return -1, errNoDialer
	}
	var got []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for i := range msgs {
			if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				got = append(got, fds...)
			}
		}
	}
	if len(got) != 1 {
		closeAll(got)
		return -1, fmt.Errorf("the router dialer: %s", buf[:n])
	}
	return got[0], nil
}

// gone drops the link.
func (d *dialer) gone() {
	unix.Close(d.link)
	d.link = -1
}
