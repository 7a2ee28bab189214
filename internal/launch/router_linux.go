package launch

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/secure/ioctlguard"
)

// routerTimeout bounds each question slim exec asks the router: the shim's
// own router timeout (SLIM_ROUTER_TIMEOUT_MS, default 500 ms).
func routerTimeout() time.Duration {
	if ms, err := strconv.Atoi(os.Getenv("SLIM_ROUTER_TIMEOUT_MS")); err == nil && ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return 500 * time.Millisecond
}

// askRouter sends one request (payload and descriptors as given) on its
// own connection and returns the reply, within routerTimeout.
func askRouter(routerSock string, t protocol.Type, payload []byte, fds ...int) (protocol.Message, error) {
	timeout := routerTimeout()
	c, err := net.DialTimeout("unixpacket", routerSock, timeout)
	if err != nil {
		return protocol.Message{}, err
	}
	conn := c.(*net.UnixConn)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := conn.WriteMsgUnix(protocol.Message{Type: t, ID: 1, Payload: payload}.Encode(), oob, nil); err != nil {
		return protocol.Message{}, err
	}
	buf := make([]byte, protocol.MaxMessage)
	n, err := conn.Read(buf)
	if err != nil {
		return protocol.Message{}, err
	}
	return protocol.Decode(buf[:n])
}

// routerSecure asks the router with HELLO whether it runs in secure mode.
// A router that cannot be reached, does not answer in time or refuses
// counts as not secure: it hands out no host socket now (see
// docs/secure.md for a router started later).
func routerSecure(routerSock string) bool {
	reply, err := askRouter(routerSock, protocol.TypeHello, nil)
	if err != nil || reply.Type != protocol.TypeHelloOK {
		return false
	}
	hello, err := protocol.DecodeHello(reply.Payload)
	return err == nil && hello.Secure
}

// enroll asks a secure router to put this process (and so the program it
// is about to become) in its container's cgroup: only programs there get
// host sockets, and secure mode's policy covers their connections over the
// overlay too. The router enrolls only a process under the ioctl guard, and
// checks it: ENROLL names the filter's listener (its fd number here) and
// carries a pidfd of the guard. Without a guard of its own (nested in a
// guarded program, whose enrolment covers it, or SLIM_IOCTL_GUARD=off)
// nothing is asked. A refusal is printed, and the program still runs
// (over the overlay).
func enroll(routerSock string, guard *ioctlguard.Protection) {
	if guard == nil {
		if os.Getenv(guardedEnv) != "1" {
			fmt.Fprintf(os.Stderr, "slim exec: %s=off: the router gives no host socket to an unguarded program; it uses the overlay\n", ioctlGuardEnv)
		}
		return
	}
	payload := protocol.Uint32Payload(uint32(guard.Listener))
	reply, err := askRouter(routerSock, protocol.TypeEnroll, payload, guard.Guard)
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "slim exec: no answer from the router at %s to ENROLL: %v\n", routerSock, err)
	case reply.Type == protocol.TypeError:
		_, text, _ := protocol.DecodeErrorPayload(reply.Payload)
		fmt.Fprintf(os.Stderr, "slim exec: the router did not put this program under secure mode's policy: %s\n", text)
	}
}

// dialRouter makes up to n connections to the router (close-on-exec), for
// the supervisor to ask on in this process's name.
func dialRouter(routerSock string, n int) []int {
	var fds []int
	for range n {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			break
		}
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: routerSock}); err != nil {
			unix.Close(fd)
			break
		}
		fds = append(fds, fd)
	}
	return fds
}

func closeFiles(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
