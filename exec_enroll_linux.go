package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/slimnet/slim/router/protocol"
)

// routerTimeout bounds each question slim exec asks the router: the shim's
// own router timeout (SLIM_ROUTER_TIMEOUT_MS, default 500 ms).
func routerTimeout() time.Duration {
	if ms, err := strconv.Atoi(os.Getenv("SLIM_ROUTER_TIMEOUT_MS")); err == nil && ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return 500 * time.Millisecond
}

// askRouter sends one request on its own connection and returns the
// reply, within routerTimeout.
func askRouter(routerSock string, t protocol.Type) (protocol.Message, error) {
	timeout := routerTimeout()
	conn, err := net.DialTimeout("unixpacket", routerSock, timeout)
	if err != nil {
		return protocol.Message{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(protocol.Message{Type: t, ID: 1}.Encode()); err != nil {
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
	reply, err := askRouter(routerSock, protocol.TypeHello)
	if err != nil || reply.Type != protocol.TypeHelloOK {
		return false
	}
	hello, err := protocol.DecodeHello(reply.Payload)
	return err == nil && hello.Secure
}

// enroll asks a secure router to put this process (and so the program it
// is about to become) in its container's cgroup: only programs there get
// host sockets, and secure mode's policy covers their connections over the
// overlay too. A refusal is printed, and the program still runs (over the
// overlay).
func enroll(routerSock string) {
	reply, err := askRouter(routerSock, protocol.TypeEnroll)
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "slim exec: no answer from the router at %s to ENROLL: %v\n", routerSock, err)
	case reply.Type == protocol.TypeError:
		_, text, _ := protocol.DecodeErrorPayload(reply.Payload)
		fmt.Fprintf(os.Stderr, "slim exec: the router did not put this program under secure mode's policy: %s\n", text)
	}
}
