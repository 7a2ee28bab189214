package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Header constants of every message.
const (
	Magic      = 0x4d494c53 // the bytes "SLIM"
	Version    = 1
	HeaderSize = 16
	// MaxPayload bounds a message's payload; a longer one is refused.
	MaxPayload = 1024
	// MaxMessage is the largest datagram a reader needs room for.
	MaxMessage = HeaderSize + MaxPayload
	// MaxFramePayload bounds the payload of a frame between routers.
	MaxFramePayload = 64 << 10
)

// Type is a message type.
type Type uint16

// Requests from the shim.
const (
	TypeHello    Type = 1
	TypePool     Type = 2
	TypeListen   Type = 3
	TypeUnlisten Type = 4
	// 5-7 were INFO, ACCEPTED and CONNECTED, retired: the router learns
	// connections from sock_diag and exec state crosses in SLIM_FDS.
	TypeStats Type = 8 // one-way: fallbacks and setup times (stats.go)
	// TypeEnroll asks the router to put the caller's process in its
	// container's cgroup (secure mode's policy for overlay connections);
	// `slim exec` sends it before starting the program.
	TypeEnroll Type = 9
	// TypeTable asks for the directory table: the reply carries a
	// read-only descriptor of DIR/directory, which only root may open by
	// its path (docs/secure.md, "What a local user can read").
	TypeTable Type = 10
	// TypePublish (re)announces a host listener the shim has made listen,
	// carrying it: the first time the app is seen accepting from it, and
	// again now and then while it is (payload.go's Publish).
	TypePublish Type = 11
	// TypeReserve carries a socket that is about to listen (bound, not
	// listening yet): its overlay address is listed pending until the
	// LISTEN that follows, so that no client takes the overlay in
	// between.
	TypeReserve Type = 12
	// TypeNameBook asks for the container's name book (router/namebook):
	// the reply carries a read-write descriptor of it.
	TypeNameBook Type = 13
)

// Replies from the router.
const (
	TypeOK         Type = 0x80
	TypeHelloOK    Type = 0x81
	TypePoolOK     Type = 0x82
	TypeListenOK   Type = 0x83
	TypeTableOK    Type = 0x8a
	TypeNameBookOK Type = 0x8d
	TypeError      Type = 0xff
)

// Between routers.
const (
	// TypeDirectory carries a router's complete list of local listeners.
	TypeDirectory Type = 0x40
	// TypeDirectoryAck says a directory version is published.
	TypeDirectoryAck Type = 0x41
	// TypeClients lists the sender's client ends of connections the
	// receiver serves (clients.go).
	TypeClients Type = 0x42
)

var typeNames = map[Type]string{
	TypeHello: "HELLO", TypePool: "POOL", TypeListen: "LISTEN", TypeUnlisten: "UNLISTEN",
	TypeStats: "STATS", TypeEnroll: "ENROLL", TypeTable: "TABLE", TypeTableOK: "TABLE_OK", TypePublish: "PUBLISH",
	TypeReserve: "RESERVE", TypeNameBook: "NAMEBOOK", TypeNameBookOK: "NAMEBOOK_OK", TypeOK: "OK", TypeHelloOK: "HELLO_OK", TypePoolOK: "POOL_OK", TypeListenOK: "LISTEN_OK", TypeError: "ERROR", TypeDirectory: "DIRECTORY", TypeDirectoryAck: "DIRECTORY_ACK",
	TypeClients: "CLIENTS",
}

func (t Type) String() string {
	if name, ok := typeNames[t]; ok {
		return name
	}
	return fmt.Sprintf("type %#x", uint16(t))
}

// Known reports whether t is a type this version defines.
func (t Type) Known() bool { _, ok := typeNames[t]; return ok }

// Message is one decoded message.
type Message struct {
	Type    Type
	ID      uint32
	Payload []byte
}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed message")

// DecodeError says why a message was refused. If HasID is set, the
// request's ID could be read and an error reply can name it.
type DecodeError struct {
	ID     uint32
	HasID  bool
	Reason string
	// UnknownType says the message is whole and well formed but of a type
	// this version does not define: a stream reader may skip it.
	UnknownType bool
}

func (e *DecodeError) Error() string { return "malformed message: " + e.Reason }

// Unwrap lets errors.Is match ErrMalformed.
func (e *DecodeError) Unwrap() error { return ErrMalformed }

// IsUnknownType reports whether err refuses a well-formed message only
// for its type.
func IsUnknownType(err error) bool {
	var de *DecodeError
	return errors.As(err, &de) && de.UnknownType
}

// Decode parses one whole datagram from a shim. The payload aliases b.
func Decode(b []byte) (Message, error) { return decode(b, MaxPayload) }

// DecodeFrame parses one whole frame from a peer router, whose payload
// may be up to MaxFramePayload bytes.
func DecodeFrame(b []byte) (Message, error) { return decode(b, MaxFramePayload) }

// FrameLength reads the payload length from a frame's header, so that a
// stream reader knows how much more to read. It refuses lengths over
// MaxFramePayload before anything is allocated.
func FrameLength(header []byte) (int, error) {
	if len(header) != HeaderSize || binary.LittleEndian.Uint32(header) != Magic {
		return 0, &DecodeError{Reason: "bad frame header"}
	}
	n := binary.LittleEndian.Uint32(header[12:])
	if n > MaxFramePayload {
		return 0, &DecodeError{Reason: fmt.Sprintf("frame payload length %d exceeds %d", n, MaxFramePayload)}
	}
	return int(n), nil
}

func decode(b []byte, maxPayload uint32) (Message, error) {
	if len(b) < HeaderSize {
		return Message{}, &DecodeError{Reason: fmt.Sprintf("%d bytes is shorter than the %d-byte header", len(b), HeaderSize)}
	}
	le := binary.LittleEndian
	m := Message{Type: Type(le.Uint16(b[6:])), ID: le.Uint32(b[8:])}
	refuse := func(format string, args ...any) (Message, error) {
		return Message{}, &DecodeError{ID: m.ID, HasID: true, Reason: fmt.Sprintf(format, args...)}
	}
	if magic := le.Uint32(b); magic != Magic {
		return Message{}, &DecodeError{Reason: fmt.Sprintf("bad magic %#08x", magic)}
	}
	if v := le.Uint16(b[4:]); v != Version {
		return refuse("version %d, this router speaks %d", v, Version)
	}
	length := le.Uint32(b[12:])
	if length > maxPayload {
		return refuse("payload length %d exceeds %d", length, maxPayload)
	}
	if int(length) != len(b)-HeaderSize {
		return refuse("header says %d payload bytes, message has %d", length, len(b)-HeaderSize)
	}
	if !m.Type.Known() {
		return Message{}, &DecodeError{ID: m.ID, HasID: true, Reason: fmt.Sprintf("unknown %v", m.Type), UnknownType: true}
	}
	m.Payload = b[HeaderSize:]
	return m, nil
}

// Encode returns the message as bytes. It panics if the payload exceeds
// MaxFramePayload, which is a programming error; shim messages must also
// stay within MaxPayload, which their fixed layouts do.
func (m Message) Encode() []byte {
	if len(m.Payload) > MaxFramePayload {
		panic(fmt.Sprintf("protocol: %v payload of %d bytes exceeds %d", m.Type, len(m.Payload), MaxFramePayload))
	}
	b := make([]byte, HeaderSize, HeaderSize+len(m.Payload))
	le := binary.LittleEndian
	le.PutUint32(b, Magic)
	le.PutUint16(b[4:], Version)
	le.PutUint16(b[6:], uint16(m.Type))
	le.PutUint32(b[8:], m.ID)
	le.PutUint32(b[12:], uint32(len(m.Payload)))
	return append(b, m.Payload...)
}
