package ioctlguard

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// run interprets the classic BPF subset the filter uses on one
// struct seccomp_data.
func run(t *testing.T, prog []unix.SockFilter, d seccompData) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.LittleEndian.PutUint32(data[0:], uint32(d.Nr))
	binary.LittleEndian.PutUint32(data[4:], d.Arch)
	binary.LittleEndian.PutUint64(data[8:], d.IP)
	for i, a := range d.Args {
		binary.LittleEndian.PutUint64(data[16+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		switch ins.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if ins.K%4 != 0 || ins.K+4 > 64 {
				t.Fatalf("pc %d: load at %d", pc, ins.K)
			}
			acc = binary.LittleEndian.Uint32(data[ins.K:])
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			acc &= ins.K
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			if acc == ins.K {
				pc += int(ins.Jt)
			} else {
				pc += int(ins.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return ins.K
		default:
			t.Fatalf("pc %d: unexpected opcode %#x", pc, ins.Code)
		}
	}
	t.Fatalf("the program runs off its end")
	return 0
}

func TestFilterDecisions(t *testing.T) {
	const (
		allow  = unix.SECCOMP_RET_ALLOW
		notify = unix.SECCOMP_RET_USER_NOTIF
	)
	x86, i386 := uint32(unix.AUDIT_ARCH_X86_64), uint32(unix.AUDIT_ARCH_I386)
	arm64, arm := uint32(unix.AUDIT_ARCH_AARCH64), uint32(unix.AUDIT_ARCH_ARM)
	tests := []struct {
		arch uint32
		nr   int32
		cmd  uint64
		want uint32
	}{
		{x86, 16, unix.SIOCGIFCONF, notify},
		{x86, 16, unix.SIOCGIFADDR, notify},
		{x86, 16, unix.SIOCGIFINDEX, notify},
		{x86, 16, unix.SIOCGSKNS, notify},
		{x86, 16, unix.SIOCSIFMTU, notify},
		{x86, 16, 0x8900, notify},
		{x86, 16, 0x89ff, notify},
		{x86, 16, 0x8b01, notify}, // SIOCGIWNAME
		{x86, 16, 0x8bff, notify},
		{x86, 16, 1<<32 | unix.SIOCGIFCONF, notify}, // the kernel ignores the high half
		{x86, 16, unix.SIOCATMARK, allow},
		{x86, 16, 0x8906, allow}, // SIOCGSTAMP
		{x86, 16, 0x8907, allow}, // SIOCGSTAMPNS
		{x86, 16, unix.SIOCOUTQNSD, allow},
		{x86, 16, 0x8901, allow}, // FIOSETOWN
		{x86, 16, 0x8904, allow}, // SIOCGPGRP
		{x86, 16, 0x541b, allow}, // FIONREAD
		{x86, 16, 0x5421, allow}, // FIONBIO
		{x86, 16, unix.TIOCOUTQ, allow},
		{x86, 16, 0x80108906, allow}, // SIOCGSTAMP_NEW
		{x86, 16, 0x88ff, allow},
		{x86, 16, 0x8a00, allow},
		{x86, 16, 0x8c00, allow},
		{x86, 0, unix.SIOCGIFCONF, allow},  // read
		{x86, 54, unix.SIOCGIFCONF, allow}, // setsockopt on x86-64
		{x86, x32Bit | 514, unix.SIOCGIFCONF, notify},
		{x86, x32Bit | 16, unix.SIOCGIFCONF, allow}, // not an x32 entry
		{i386, 54, unix.SIOCGIFCONF, notify},
		{i386, 54, 0x541b, allow},           // FIONREAD
		{i386, 16, unix.SIOCGIFCONF, allow}, // lchown on i386
		{arm64, 29, unix.SIOCGIFCONF, notify},
		{arm64, 29, unix.SIOCATMARK, allow},
		{arm64, 16, unix.SIOCGIFCONF, allow},
		{arm, 54, unix.SIOCGIFCONF, notify},
		{unix.AUDIT_ARCH_RISCV64, 29, unix.SIOCGIFCONF, allow},
	}
	prog := filter(rules{ioctls: true})
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%#x/%#x/%#x", tt.arch, tt.nr, tt.cmd), func(t *testing.T) {
			d := seccompData{Nr: tt.nr, Arch: tt.arch, Args: [6]uint64{3, tt.cmd, 0xdead}}
			if got := run(t, prog, d); got != tt.want {
				t.Errorf("filter = %#x, want %#x", got, tt.want)
			}
		})
	}
}

// TestGuardedMatchesFilter checks guarded, the filter's rule in Go, against
// the program over the whole 16-bit request space.
func TestGuardedMatchesFilter(t *testing.T) {
	prog := filter(rules{ioctls: true})
	for cmd := range uint32(1 << 16) {
		d := seccompData{Nr: 16, Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{0, uint64(cmd)}}
		notified := run(t, prog, d) == unix.SECCOMP_RET_USER_NOTIF
		if notified != guarded(cmd) {
			t.Fatalf("request %#x: filter notifies %v, guarded says %v", cmd, notified, guarded(cmd))
		}
	}
}

func TestLookupCall(t *testing.T) {
	for _, c := range ioctlCalls {
		got, ok := lookupCall(c.arch, int32(c.nr))
		if !ok || got != c {
			t.Errorf("lookupCall(%#x, %#x) = %v, %v", c.arch, c.nr, got, ok)
		}
	}
	if _, ok := lookupCall(unix.AUDIT_ARCH_X86_64, 54); ok {
		t.Errorf("setsockopt taken for an ioctl")
	}
}

// TestFilterTraps checks the socket supervisor's traps, alone and with
// the ioctls: a conditional trap notifies only for its argument's value.
func TestFilterTraps(t *testing.T) {
	const x86, arm64 = unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_AARCH64
	traps := []Trap{
		{Arch: x86, Nr: 42, Arg: 3, Values: []uint32{16}},      // connect, IPv4 only
		{Arch: x86, Nr: 72, Arg: 2, Values: []uint32{0, 1030}}, // fcntl F_DUPFD, F_DUPFD_CLOEXEC
		{Arch: x86, Nr: 50},    // listen
		{Arch: arm64, Nr: 201}, // listen
	}
	allow, notify := uint32(unix.SECCOMP_RET_ALLOW), uint32(unix.SECCOMP_RET_USER_NOTIF)
	for _, ioctls := range []bool{false, true} {
		prog := filter(rules{ioctls: ioctls, traps: traps})
		ioctlWant := allow
		if ioctls {
			ioctlWant = notify
		}
		tests := []struct {
			name string
			d    seccompData
			want uint32
		}{
			{"connect IPv4", seccompData{Nr: 42, Arch: x86, Args: [6]uint64{3, 0x1000, 16}}, notify},
			{"connect IPv6", seccompData{Nr: 42, Arch: x86, Args: [6]uint64{3, 0x1000, 28}}, allow},
			{"connect high bits", seccompData{Nr: 42, Arch: x86, Args: [6]uint64{3, 0x1000, 1<<32 | 16}}, notify},
			{"F_DUPFD", seccompData{Nr: 72, Arch: x86, Args: [6]uint64{3, 0, 10}}, notify},
			{"F_DUPFD_CLOEXEC", seccompData{Nr: 72, Arch: x86, Args: [6]uint64{3, 1030, 10}}, notify},
			{"F_GETFL", seccompData{Nr: 72, Arch: x86, Args: [6]uint64{3, 3}}, allow},
			{"listen", seccompData{Nr: 50, Arch: x86, Args: [6]uint64{3, 5}}, notify},
			{"listen arm64", seccompData{Nr: 201, Arch: arm64}, notify},
			{"getppid", seccompData{Nr: 110, Arch: x86}, allow},
			{"i386 listen number", seccompData{Nr: 50, Arch: unix.AUDIT_ARCH_I386}, allow},
			{"ioctl", seccompData{Nr: 16, Arch: x86, Args: [6]uint64{3, unix.SIOCGIFCONF}}, ioctlWant},
			{"FIONREAD", seccompData{Nr: 16, Arch: x86, Args: [6]uint64{3, 0x541b}}, allow},
		}
		for _, tt := range tests {
			if got := run(t, prog, tt.d); got != tt.want {
				t.Errorf("ioctls %v, %s: filter = %#x, want %#x", ioctls, tt.name, got, tt.want)
			}
		}
	}
}
