package ioctlguard

import (
	"encoding/binary"
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sizes of the structures the performed requests take.
const (
	ifreqSize       = 40 // struct ifreq of a 64-bit caller (and of the guard)
	compatIfreqSize = 32 // of a 32-bit caller
	arpreqSize      = 68 // struct arpreq, the same for both
	// maxIfconf bounds the interface list the guard fetches for one
	// SIOCGIFCONF: 1638 interfaces.
	maxIfconf = 64 << 10
)

// ifreqGets are the struct ifreq requests that only read, hold no pointer,
// and need no privilege: the guard performs them on the caller's file.
var ifreqGets = map[uint32]bool{
	unix.SIOCGIFNAME: true, unix.SIOCGIFFLAGS: true, unix.SIOCGIFADDR: true,
	unix.SIOCGIFDSTADDR: true, unix.SIOCGIFBRDADDR: true, unix.SIOCGIFNETMASK: true,
	unix.SIOCGIFMETRIC: true, unix.SIOCGIFMTU: true, unix.SIOCGIFHWADDR: true,
	unix.SIOCGIFSLAVE: true, unix.SIOCGIFINDEX: true, unix.SIOCGIFPFLAGS: true,
	unix.SIOCGIFTXQLEN: true, unix.SIOCGIFMAP: true,
}

// emulation performs a read-only request on the caller's file, with the
// caller's argument copied in and the result copied out.
type emulation func(t *target, file int, call ioctlCall, cmd uint32, arg uint64) reply

// emulationFor says how the guard performs request cmd itself, or returns
// nil when it leaves the request to the kernel.
func emulationFor(cmd uint32, call ioctlCall) emulation {
	switch {
	case cmd == unix.SIOCGIFMAP && call.compat:
		return nil // struct ifmap has longs: a layout of its own at 32 bits
	case ifreqGets[cmd]:
		return emulateIfreq
	case cmd == unix.SIOCGIFCONF:
		return emulateIfconf
	case cmd == unix.SIOCGARP:
		return emulateArpreq
	}
	return nil
}

func emulateIfreq(t *target, file int, call ioctlCall, cmd uint32, arg uint64) reply {
	return emulateFixed(t, file, cmd, arg, call.ifreqSize(), ifreqSize)
}

func emulateArpreq(t *target, file int, _ ioctlCall, cmd uint32, arg uint64) reply {
	return emulateFixed(t, file, cmd, arg, arpreqSize, arpreqSize)
}

// emulateFixed performs a request whose argument is one structure of size
// bytes in the caller (room bytes for the guard's own call): read it,
// perform, write it back on success, as the kernel would.
func emulateFixed(t *target, file int, cmd uint32, arg uint64, size, room int) reply {
	in, err := t.read(arg, size)
	if err != nil {
		return memoryFailure(err)
	}
	buf := make([]byte, room)
	copy(buf, in)
	val, errno := perform(file, cmd, unsafe.Pointer(&buf[0]))
	if errno != 0 {
		return reply{errno: errno, why: "performed"}
	}
	if err := t.write(arg, buf[:size]); err != nil {
		return memoryFailure(err)
	}
	return reply{val: val, why: "performed"}
}

// emulateIfconf performs SIOCGIFCONF: struct ifconf {int len; void *buf},
// buf receiving one struct ifreq per address, or the size needed when
// buf is NULL.
func emulateIfconf(t *target, file int, call ioctlCall, _ uint32, arg uint64) reply {
	hdr, err := t.read(arg, call.ifconfSize())
	if err != nil {
		return memoryFailure(err)
	}
	length, buf := call.decodeIfconf(hdr)
	entry := call.ifreqSize()
	want := -1 // the size query
	if buf != 0 {
		want = min(max(int(length), 0), maxIfconf) / entry
	}
	list, count, errno := interfaceList(file, want)
	if errno != 0 {
		return reply{errno: errno, why: "performed"}
	}
	if buf != 0 {
		out := make([]byte, 0, count*entry)
		for i := range count {
			out = append(out, list[i*ifreqSize:i*ifreqSize+entry]...)
		}
		if err := t.write(buf, out); err != nil {
			return memoryFailure(err)
		}
	}
	if err := t.write(arg, binary.LittleEndian.AppendUint32(nil, uint32(count*entry))); err != nil {
		return memoryFailure(err)
	}
	return reply{why: "performed"}
}

// ifconf is struct ifconf of the guard (64 bits).
type ifconf struct {
	Len int32
	_   int32
	Buf *byte
}

// interfaceList performs SIOCGIFCONF on file for room for want entries
// (-1: the size query, with a NULL buffer), returning the entries and
// their count.
func interfaceList(file int, want int) ([]byte, int, unix.Errno) {
	var ic ifconf
	var list []byte
	if want >= 0 {
		list = make([]byte, max(want, 1)*ifreqSize)
		ic.Len = int32(want * ifreqSize)
		ic.Buf = &list[0]
	}
	if _, errno := perform(file, unix.SIOCGIFCONF, unsafe.Pointer(&ic)); errno != 0 {
		return nil, 0, errno
	}
	return list, int(ic.Len) / ifreqSize, 0
}

// perform runs the ioctl on the guard's copy of the caller's file.
func perform(file int, cmd uint32, arg unsafe.Pointer) (int64, unix.Errno) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(file), uintptr(cmd), uintptr(arg))
	return int64(r), errno
}

// memoryFailure is the answer when the caller's memory cannot be used:
// EFAULT as the kernel would say for a bad address, EPERM when the guard
// may not open it.
func memoryFailure(err error) reply {
	switch {
	case errors.Is(err, errGone):
		return reply{errno: unix.EINTR, why: err.Error()}
	case errors.Is(err, errNoAccess):
		return reply{errno: unix.EPERM, why: err.Error()}
	}
	return reply{errno: unix.EFAULT, why: err.Error()}
}

func (c ioctlCall) ifreqSize() int {
	if c.compat {
		return compatIfreqSize
	}
	return ifreqSize
}

func (c ioctlCall) ifconfSize() int {
	if c.compat {
		return 8
	}
	return 16
}

// decodeIfconf reads a caller's struct ifconf.
func (c ioctlCall) decodeIfconf(b []byte) (length int32, buf uint64) {
	length = int32(binary.LittleEndian.Uint32(b))
	if c.compat {
		return length, uint64(binary.LittleEndian.Uint32(b[4:]))
	}
	return length, binary.LittleEndian.Uint64(b[8:])
}
