package router

import (
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
)

// Root-free tests of the shim protocol: the router serves one end of a
// SEQPACKET socketpair in this process, whose own network namespace is
// registered as the container "self". The kernel facts are real: the
// caller's credentials, the pool sockets, the descriptors in flight.

// selfRouter is a router whose one container is this process's network
// namespace, with the given limits.
func selfRouter(t *testing.T, limits Limits) (*Router, *container) {
	t.Helper()
	config := Config{
		Dir: t.TempDir(), Overlay: "198.19.0.0/16", HostBits: 24,
		Hosts:      []HostConfig{{Underlay: "198.18.0.1", Subnet: "198.19.1.0/24"}},
		Containers: []ContainerConfig{{Name: "self", Netns: "/proc/self/ns/net", Addr: "198.19.1.2"}},
		Limits:     limits,
	}
	plan, err := config.Plan()
	if err != nil {
		t.Fatal(err)
	}
	r := &Router{
		config: config, plan: plan, self: plan.Hosts[0],
		log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		mode:       plainMode{},
		containers: map[uint64]*container{}, listeners: newRegistry(),
		census: newCensus(), shimStats: newShimStats(), peerHealth: newPeerHealth(),
	}
	ino, err := namespaceInode("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.newContainer("self", "198.19.1.2", ino)
	if err != nil {
		t.Fatal(err)
	}
	r.containers[ino] = c
	t.Cleanup(r.closeContainers)
	return r, c
}

// shimPair connects a shim end to r.serveShim and returns the shim end
// and a channel closed when the router is done with the connection.
// Datagrams in first are sent before the router serves the connection.
func shimPair(t *testing.T, r *Router, first ...[]byte) (*net.UnixConn, <-chan struct{}) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]*net.UnixConn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "shim-pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
	}
	for _, b := range first {
		send(t, conns[0], b)
	}
	done := make(chan struct{})
	go func() { defer close(done); r.serveShim(conns[1]) }()
	t.Cleanup(func() {
		conns[0].Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the router still serves a connection 10 s after the shim closed it")
		}
	})
	return conns[0], done
}

// shimReply is a reply as a shim reads it.
type shimReply struct {
	protocol.Message
	fds   []int
	errno int32
	text  string
}

// send writes one datagram with descriptors.
func send(t *testing.T, conn *net.UnixConn, b []byte, fds ...int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := conn.WriteMsgUnix(b, oob, nil); err != nil {
		t.Fatalf("sending %d bytes: %v", len(b), err)
	}
}

// receive reads one reply within timeout; the test owns its descriptors.
func receive(t *testing.T, conn *net.UnixConn, timeout time.Duration) (shimReply, error) {
	t.Helper()
	buf := make([]byte, protocol.MaxMessage)
	oob := make([]byte, unix.CmsgSpace(protocol.MaxPool*4))
	conn.SetReadDeadline(time.Now().Add(timeout))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return shimReply{}, err
	}
	var r shimReply
	if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, c := range cmsgs {
			fds, _ := unix.ParseUnixRights(&c)
			r.fds = append(r.fds, fds...)
		}
	}
	t.Cleanup(func() { closeAll(r.fds) })
	if r.Message, err = protocol.Decode(buf[:n]); err != nil {
		t.Fatalf("reply: %v", err)
	}
	if r.Type == protocol.TypeError {
		r.errno, r.text, _ = protocol.DecodeErrorPayload(r.Payload)
	}
	return r, nil
}

// call sends a request and reads its reply.
func call(t *testing.T, conn *net.UnixConn, m protocol.Message) shimReply {
	t.Helper()
	send(t, conn, m.Encode())
	r, err := receive(t, conn, 5*time.Second)
	if err != nil {
		t.Fatalf("%v: no reply: %v", m.Type, err)
	}
	return r
}

// pipeClosedEverywhere reports whether every write end of the pipe whose
// read end is given is closed: reading then gives EOF at once.
func pipeClosedEverywhere(t *testing.T, read int) bool {
	t.Helper()
	unix.SetNonblock(read, true)
	n, err := unix.Read(read, make([]byte, 1))
	return n == 0 && err == nil
}
