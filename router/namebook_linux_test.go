package router

import (
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/namebook"
	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/router/shimserver/shimtest"
)

// bookOf asks for the caller's name book and maps it.
func bookOf(t *testing.T, shim *shimtest.Shim, id uint32) *namebook.Book {
	t.Helper()
	reply := shim.Call(protocol.Message{Type: protocol.TypeNameBook, ID: id})
	if reply.Type != protocol.TypeNameBookOK || len(reply.FDs) != 1 {
		t.Fatalf("NAMEBOOK: %v %q, %d fds", reply.Type, reply.Text, len(reply.FDs))
	}
	defer unix.Close(reply.FDs[0])
	b, err := namebook.Map(reply.FDs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestNameBook: NAMEBOOK gives every process of a container the same
// book, read-write, and another container another; a request with a
// payload or a descriptor is refused.
func TestNameBook(t *testing.T) {
	r, c := handlerRouter(t)
	shim, _ := shimPair(t, r)
	first, second := bookOf(t, shim, 1), bookOf(t, shim, 2)
	n := namebook.Names{Local: netip.MustParseAddrPort("198.19.1.2:80"), Peer: netip.MustParseAddrPort("198.19.2.2:4000")}
	if !first.Put(42, n, namebook.NowMS()) {
		t.Fatal("Put refused")
	}
	if got, ok := second.Get(42); !ok || got != n {
		t.Errorf("the container's second book reads %+v %v; want what its first wrote", got, ok)
	}

	other := &container{Name: "other", Addr: netip.MustParseAddr("198.19.1.9"), Netns: c.Netns + 1, Source: control.SourceConfig, pool: c.pool}
	if err := r.containers.add(other); err != nil {
		t.Fatal(err)
	}
	r.callers = fakeIdentifier{who: caller{PID: int32(os.Getpid()), Container: other}}
	stranger, _ := shimPair(t, r)
	if _, ok := bookOf(t, stranger, 3).Get(42); ok {
		t.Error("another container's book holds the names")
	}

	wantError(t, "NAMEBOOK with a payload", shim.Call(protocol.Message{Type: protocol.TypeNameBook, ID: 4, Payload: []byte{1}}), unix.EINVAL, "no payload")
	wantError(t, "NAMEBOOK with a descriptor", callWith(t, shim, protocol.Message{Type: protocol.TypeNameBook, ID: 5}, int(os.Stdin.Fd())), unix.EINVAL, "carries 1 descriptors, want 0")
}

// TestNameBookSecureMode: secure mode's programs name host sockets in the
// kernel; its router hands out no book.
func TestNameBookSecureMode(t *testing.T) {
	r := secureRefusalRouter(t)
	shim, _ := shimPair(t, r)
	wantError(t, "NAMEBOOK in secure mode", shim.Call(protocol.Message{Type: protocol.TypeNameBook, ID: 1}), unix.EOPNOTSUPP, "kernel names connections")
}
