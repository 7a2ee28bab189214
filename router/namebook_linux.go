package router

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/namebook"
	"github.com/slimnet/slim/router/protocol"
)

// containerBook is a container's name book (router/namebook), made at its
// first NAMEBOOK: the overlay names of the connections its processes pass
// to one another.
type containerBook struct {
	mu   sync.Mutex
	fd   int
	made bool
}

// get returns a new descriptor of the book, making the book if need be.
func (b *containerBook) get() (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.made {
		fd, err := namebook.Create()
		if err != nil {
			return -1, err
		}
		b.fd, b.made = fd, true
	}
	return unix.FcntlInt(uintptr(b.fd), unix.F_DUPFD_CLOEXEC, 0)
}

// close lets the router's descriptor go (the processes' mappings live on).
func (b *containerBook) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.made {
		unix.Close(b.fd)
		b.made = false
	}
}

// nameBook answers NAMEBOOK: a read-write descriptor of the caller's
// container's name book, and of no other container's (the caller is
// identified by the kernel, docs/protocol.md §1). Secure mode's programs
// name host sockets in the kernel: no book there.
func (r *Router) nameBook(c *container, payload []byte) (protocol.Message, []int, error) {
	if len(payload) != 0 {
		return protocol.Message{}, nil, refuse(unix.EINVAL, "NAMEBOOK carries no payload")
	}
	if r.mode.isSecure() {
		return protocol.Message{}, nil, refuse(unix.EOPNOTSUPP, "NAMEBOOK: in secure mode the kernel names connections")
	}
	fd, err := c.book.get()
	if err != nil {
		return protocol.Message{}, nil, refuse(unix.ENOMEM, "NAMEBOOK: %v", err)
	}
	return protocol.Message{Type: protocol.TypeNameBookOK}, []int{fd}, nil
}
