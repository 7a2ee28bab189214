package protocol

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// MaxPool is the most sockets one POOL request may ask for.
const MaxPool = 64

// payloadError reports a payload of the wrong size for its type.
func payloadError(t Type, got, want int) error {
	return fmt.Errorf("%w: %v payload has %d bytes, want %d", ErrMalformed, t, got, want)
}

func putAddr(b []byte, a netip.Addr) { copy(b, a.AsSlice()) }

func getAddr(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

func putPort(b []byte, p uint16) { binary.BigEndian.PutUint16(b, p) }

func getPort(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

// PoolFamily is the address family of the host sockets a POOL request asks
// for: AF_INET ones (the default), or AF_INET6 ones, for the application's
// AF_INET6 sockets that connect to IPv4 (v4-mapped) addresses.
type PoolFamily uint32

// Pool families (Linux's AF_INET and AF_INET6).
const (
	PoolInet  PoolFamily = 2
	PoolInet6 PoolFamily = 10
)

// PoolCount decodes a POOL request's count (see PoolRequest).
func PoolCount(payload []byte) (int, error) {
	n, _, err := PoolRequest(payload)
	return n, err
}

// PoolRequest decodes a POOL request: u32 count, then an optional u32
// family (PoolInet when absent).
func PoolRequest(payload []byte) (int, PoolFamily, error) {
	if len(payload) != 4 && len(payload) != 8 {
		return 0, 0, payloadError(TypePool, len(payload), 4)
	}
	n := binary.LittleEndian.Uint32(payload)
	if n < 1 || n > MaxPool {
		return 0, 0, fmt.Errorf("%w: POOL count %d outside 1..%d", ErrMalformed, n, MaxPool)
	}
	family := PoolInet
	if len(payload) == 8 {
		family = PoolFamily(binary.LittleEndian.Uint32(payload[4:]))
		if family != PoolInet && family != PoolInet6 {
			return 0, 0, fmt.Errorf("%w: POOL family %d is neither AF_INET nor AF_INET6", ErrMalformed, family)
		}
	}
	return int(n), family, nil
}

// PoolPayload encodes a POOL request for n sockets of family.
func PoolPayload(n uint32, family PoolFamily) []byte {
	b := binary.LittleEndian.AppendUint32(nil, n)
	if family == PoolInet {
		return b
	}
	return binary.LittleEndian.AppendUint32(b, uint32(family))
}

// Uint32Payload encodes a single little-endian u32 (POOL, POOL_OK, LISTEN).
func Uint32Payload(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// ListenBacklog decodes a LISTEN request.
func ListenBacklog(payload []byte) (int, error) {
	if len(payload) != 4 {
		return 0, payloadError(TypeListen, len(payload), 4)
	}
	return int(min(binary.LittleEndian.Uint32(payload), 1<<16)), nil
}

// Hello is the HELLO_OK payload: who the caller is on the overlay.
type Hello struct {
	Addr    netip.Addr   // the container's overlay address
	Overlay netip.Prefix // the overlay CIDR
	// Secure says the router runs in secure mode: the shim then takes an
	// accepted connection's peer from the kernel, not from the preamble.
	Secure bool
	// IPv6 is the overlay's IPv6 /96 (zero: none): the container's IPv6
	// overlay address is it with Addr as the last 32 bits.
	IPv6 netip.Prefix
}

// helloIPv6 is HELLO_OK's flag (byte 9) that the IPv6 /96 follows.
const helloIPv6 = 1 << 1

// Encode returns the payload bytes.
func (h Hello) Encode() []byte {
	b := make([]byte, 12)
	putAddr(b, h.Addr)
	putAddr(b[4:], h.Overlay.Addr())
	b[8] = byte(h.Overlay.Bits())
	if h.Secure {
		b[9] = 1
	}
	if h.IPv6.IsValid() {
		b[9] |= helloIPv6
		a := h.IPv6.Addr().As16()
		b = append(b, a[:12]...)
	}
	return b
}

// DecodeHello parses a HELLO_OK payload.
func DecodeHello(b []byte) (Hello, error) {
	want := 12
	if len(b) > 9 && b[9]&helloIPv6 != 0 {
		want = 24
	}
	if len(b) != want {
		return Hello{}, payloadError(TypeHelloOK, len(b), want)
	}
	prefix, err := getAddr(b[4:]).Prefix(int(b[8]))
	if err != nil || int(b[8]) > 32 {
		return Hello{}, fmt.Errorf("%w: HELLO_OK prefix length %d", ErrMalformed, b[8])
	}
	h := Hello{Addr: getAddr(b), Overlay: prefix, Secure: b[9]&1 != 0}
	if want == 24 {
		var a [16]byte
		copy(a[:], b[12:24])
		h.IPv6 = netip.PrefixFrom(netip.AddrFrom16(a), 96)
	}
	return h, nil
}

// Listener is the LISTEN_OK payload: the overlay listener and the host
// listener that now stands for it.
type Listener struct {
	Overlay netip.AddrPort
	Host    netip.AddrPort
}

// Encode returns the payload bytes.
func (l Listener) Encode() []byte {
	b := make([]byte, 12)
	putAddr(b, l.Overlay.Addr())
	putPort(b[4:], l.Overlay.Port())
	putPort(b[6:], l.Host.Port())
	putAddr(b[8:], l.Host.Addr())
	return b
}

// DecodeListener parses a LISTEN_OK payload.
func DecodeListener(b []byte) (Listener, error) {
	if len(b) != 12 {
		return Listener{}, payloadError(TypeListenOK, len(b), 12)
	}
	return Listener{
		Overlay: netip.AddrPortFrom(getAddr(b), getPort(b[4:])),
		Host:    netip.AddrPortFrom(getAddr(b[8:]), getPort(b[6:])),
	}, nil
}

// Publish is the PUBLISH payload: the overlay listener a host listener
// stands for.
type Publish struct {
	Overlay netip.AddrPort
	// Flags are the listener's directory flags (DirFlagIPv6 ...): the
	// families of clients it takes.
	Flags uint16
}

// Encode returns the payload bytes: u32 IP, u16 port (both nbo), u16
// flags (little-endian; 0 from shims before IPv6 overlays).
func (p Publish) Encode() []byte {
	b := make([]byte, 8)
	putAddr(b, p.Overlay.Addr())
	putPort(b[4:], p.Overlay.Port())
	binary.LittleEndian.PutUint16(b[6:], p.Flags)
	return b
}

// DecodePublish parses a PUBLISH payload.
func DecodePublish(b []byte) (Publish, error) {
	if len(b) != 8 {
		return Publish{}, payloadError(TypePublish, len(b), 8)
	}
	flags := binary.LittleEndian.Uint16(b[6:])
	if flags&^DirFlagsKnown != 0 || (flags&DirFlagNoIPv4 != 0 && flags&DirFlagIPv6 == 0) {
		return Publish{}, fmt.Errorf("%w: PUBLISH flags %#x", ErrMalformed, flags)
	}
	return Publish{Overlay: netip.AddrPortFrom(getAddr(b), getPort(b[4:])), Flags: flags}, nil
}

// ErrorPayload encodes an ERROR reply: an errno the shim can return to the
// application and a sentence for logs.
func ErrorPayload(errno int32, text string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(errno))
	if len(text) > MaxPayload-4 {
		text = text[:MaxPayload-4]
	}
	return append(b, text...)
}

// DecodeErrorPayload parses an ERROR payload.
func DecodeErrorPayload(b []byte) (errno int32, text string, err error) {
	if len(b) < 4 {
		return 0, "", payloadError(TypeError, len(b), 4)
	}
	return int32(binary.LittleEndian.Uint32(b)), string(b[4:]), nil
}
