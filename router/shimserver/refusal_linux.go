package shimserver

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
)

// Refusal is a refused request or connection, with the errno the shim
// should see.
type Refusal struct {
	Errno unix.Errno
	Text  string
}

func (e *Refusal) Error() string { return e.Text }

// Refuse makes a Refusal.
func Refuse(errno unix.Errno, format string, args ...any) error {
	return &Refusal{Errno: errno, Text: fmt.Sprintf(format, args...)}
}

// ErrnoOf is the errno of a Refusal in err's chain; EPROTO for any other
// error.
func ErrnoOf(err error) unix.Errno {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Errno
	}
	return unix.EPROTO
}

// ErrorMessage is the ERROR reply to request id.
func ErrorMessage(id uint32, errno unix.Errno, text string) protocol.Message {
	return protocol.Message{Type: protocol.TypeError, ID: id, Payload: protocol.ErrorPayload(int32(errno), text)}
}
