package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/slimnet/slim/router/protocol"
)

// enrollTimeout bounds the wait for the router's answer to ENROLL: the
// shim's own router timeout (SLIM_ROUTER_TIMEOUT_MS, default 500 ms).
func enrollTimeout() time.Duration {
	if ms, err := strconv.Atoi(os.Getenv("SLIM_ROUTER_TIMEOUT_MS")); err == nil && ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return 500 * time.Millisecond
}

// enroll asks the router to put this process (and so the program it is
// about to become) in its container's cgroup, where secure mode's policy
// covers connections over the overlay too. A router that is not running is
// not an error, nor is one that does not answer in time: the shim says so
// when it first needs it. A refusal is printed, and the program still runs.
func enroll(routerSock string) {
	timeout := enrollTimeout()
	conn, err := net.DialTimeout("unixpacket", routerSock, timeout)
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(protocol.Message{Type: protocol.TypeEnroll, ID: 1}.Encode()); err != nil {
		return
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return
	}
	reply, err := protocol.Decode(buf[:n])
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "slim exec: the router at %s answered ENROLL with a malformed message: %v\n", routerSock, err)
	case reply.Type == protocol.TypeError:
		_, text, _ := protocol.DecodeErrorPayload(reply.Payload)
		fmt.Fprintf(os.Stderr, "slim exec: the router did not put this program under secure mode's policy: %s\n", text)
	}
}
