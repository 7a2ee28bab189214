package ioctlguard

import (
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data, which the filter reads.
const (
	offNr   = 0
	offArch = 4
	// offCmd is the low half of args[1], the ioctl request: the kernel
	// takes it as an unsigned int. Little-endian layout (every
	// architecture the filter knows is).
	offCmd = 16 + 8
)

// x32Bit marks x32 system calls, which come with AUDIT_ARCH_X86_64.
const x32Bit = 0x40000000

// ioctlCall is the ioctl system call of one ABI the kernel may report.
type ioctlCall struct {
	arch   uint32
	nr     uint32
	compat bool // 32-bit pointers and longs
}

// ioctlCalls are every ioctl entry a 64-bit x86 or Arm kernel has. A
// 64-bit program can make 32-bit system calls too (int $0x80 on x86), so
// the compat ones must be caught as well.
var ioctlCalls = []ioctlCall{
	{arch: unix.AUDIT_ARCH_X86_64, nr: 16},
	{arch: unix.AUDIT_ARCH_X86_64, nr: x32Bit | 514, compat: true},
	{arch: unix.AUDIT_ARCH_I386, nr: 54, compat: true},
	{arch: unix.AUDIT_ARCH_AARCH64, nr: 29},
	{arch: unix.AUDIT_ARCH_ARM, nr: 54, compat: true},
}

// lookupCall finds the ioctl entry a notification came through.
func lookupCall(arch uint32, nr int32) (ioctlCall, bool) {
	for _, c := range ioctlCalls {
		if c.arch == arch && c.nr == uint32(nr) {
			return c, true
		}
	}
	return ioctlCall{}, false
}

// passed are requests in the guarded ranges that reveal nothing about the
// socket's namespace and that programs make on their own connections
// (the guard would refuse them on a host socket): FIOSETOWN, SIOCSPGRP,
// FIOGETOWN, SIOCGPGRP, SIOCATMARK, SIOCGSTAMP and SIOCGSTAMPNS (their
// 32-bit-time numbers; the 64-bit-time ones lie outside the ranges) and
// SIOCOUTQNSD. They stay in the kernel.
var passed = []uint32{0x8901, 0x8902, 0x8903, 0x8904, 0x8905, 0x8906, 0x8907, 0x894b}

// guarded reports whether the filter sends ioctl request cmd to the guard:
// the socket ioctls 0x8900-0x89ff and the wireless ones 0x8b00-0x8bff,
// except the passed ones.
func guarded(cmd uint32) bool {
	for _, p := range passed {
		if cmd == p {
			return false
		}
	}
	return cmd&^0xff == 0x8900 || cmd&^0xff == 0x8b00
}

// Trap is a system call, other than the socket ioctls, that the filter
// sends to the guard's socket handler.
type Trap struct {
	Arch uint32 // AUDIT_ARCH_*
	Nr   uint32
	// Arg > 0 traps the call only when the low 32 bits of argument
	// Arg-1 equal one of Values (connect's address length, say); 0:
	// always.
	Arg    int
	Values []uint32
}

// rules are what a filter traps: the socket ioctls when ioctls is set,
// and traps.
type rules struct {
	ioctls bool
	traps  []Trap
}

// offArg is the offset of the low 32 bits of argument i in struct
// seccomp_data (little-endian).
func offArg(i int) uint32 { return 16 + 8*uint32(i) }

// filter returns the classic BPF program: USER_NOTIF for a guarded ioctl
// request through any ioctl entry above (when r.ioctls) and for each trap,
// ALLOW for everything else (system calls of an architecture the filter
// does not know included: a 64-bit x86 or Arm kernel reports none). Apart
// from ioctl and conditional traps, every result depends on the system
// call number only, so the kernel's seccomp action cache answers without
// running the program.
func filter(r rules) []unix.SockFilter {
	var a assembler
	a.load(offArch)
	for _, arch := range r.archs() {
		a.jumpIfEqual(arch, archLabel(arch))
	}
	a.ret(unix.SECCOMP_RET_ALLOW)
	for _, arch := range r.archs() {
		a.label(archLabel(arch))
		a.load(offNr)
		for _, c := range ioctlCalls {
			if r.ioctls && c.arch == arch {
				a.jumpIfEqual(c.nr, "ioctl")
			}
		}
		for i, t := range r.traps {
			if t.Arch == arch {
				a.jumpIfEqual(t.Nr, trapLabel(i))
			}
		}
		a.ret(unix.SECCOMP_RET_ALLOW)
	}
	for i, t := range r.traps {
		a.label(trapLabel(i))
		if t.Arg > 0 {
			a.load(offArg(t.Arg - 1))
			for _, v := range t.Values {
				a.jumpIfEqual(v, "notify")
			}
			a.ret(unix.SECCOMP_RET_ALLOW)
		} else {
			a.ret(unix.SECCOMP_RET_USER_NOTIF)
		}
	}
	a.label("ioctl")
	if r.ioctls {
		a.load(offCmd)
		for _, p := range passed {
			a.jumpIfEqual(p, "allow")
		}
		a.and(^uint32(0xff))
		a.jumpIfEqual(0x8900, "notify")
		a.jumpIfEqual(0x8b00, "notify")
	}
	a.label("allow")
	a.ret(unix.SECCOMP_RET_ALLOW)
	a.label("notify")
	a.ret(unix.SECCOMP_RET_USER_NOTIF)
	return a.assemble()
}

// archs lists the architectures the filter looks at, once each, in order:
// those of the ioctl entries when ioctls are guarded, then the traps'.
func (r rules) archs() []uint32 {
	var out []uint32
	add := func(arch uint32) {
		if !slices.Contains(out, arch) {
			out = append(out, arch)
		}
	}
	if r.ioctls {
		for _, c := range ioctlCalls {
			add(c.arch)
		}
	}
	for _, t := range r.traps {
		add(t.Arch)
	}
	return out
}

func archLabel(arch uint32) string { return fmt.Sprintf("arch %#x", arch) }

func trapLabel(i int) string { return fmt.Sprintf("trap %d", i) }
