package ioctlguard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The main goroutine keeps the main thread: a goroutine that exits while
// locked to the main thread does not end the thread (the runtime parks
// it), so a filter installed there would never let its guard stop.
func init() { runtime.LockOSThread() }

// filtered is one thread of the test process under the filter, with a
// guard answering for it from another goroutine of the same process.
type filtered struct {
	calls  chan func()
	served chan error // the guard's serve result
}

// startFiltered starts the filtered thread and its guard; the cleanup
// ends the thread and checks that the guard then stops by itself.
func startFiltered(tb testing.TB) *filtered {
	f := &filtered{calls: make(chan func()), served: make(chan error, 1)}
	installed := make(chan error)
	listener := -1
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		var err error
		listener, err = install(false, rules{ioctls: true}, false)
		installed <- err
		if err != nil {
			return
		}
		for call := range f.calls {
			call()
		}
	}()
	if err := <-installed; err != nil {
		tb.Fatalf("install: %v", err)
	}
	netns, err := ownNetns()
	if err != nil {
		tb.Fatal(err)
	}
	g := &guard{listener: listener, netns: netns}
	if testing.Verbose() {
		g.debug = os.Stderr
	}
	go func() { f.served <- g.serve(); unix.Close(listener) }()
	tb.Cleanup(func() {
		close(f.calls)
		select {
		case err := <-f.served:
			if err != nil {
				tb.Errorf("guard: %v", err)
			}
		case <-time.After(5 * time.Second):
			tb.Errorf("the guard still serves 5 s after the filtered thread ended")
		}
	})
	return f
}

// do runs call on the filtered thread.
func (f *filtered) do(call func()) {
	done := make(chan struct{})
	f.calls <- func() { defer close(done); call() }
	<-done
}

func ioctl(fd int, cmd uint32, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

// ioctlAt calls ioctl with an address that is no Go pointer.
func ioctlAt(fd int, cmd uint32, addr uintptr) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(cmd), addr)
	if errno != 0 {
		return errno
	}
	return nil
}

func ifreqCall(fd int, cmd uint32, name string) (*unix.Ifreq, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, err
	}
	return ifr, unix.IoctlIfreq(fd, uint(cmd), ifr)
}

// interfaces performs SIOCGIFCONF with room for n entries (-1: NULL buffer).
func interfaces(fd, n int) (int32, []byte, error) {
	var ic ifconf
	buf := make([]byte, max(n, 1)*ifreqSize)
	if n >= 0 {
		ic.Len, ic.Buf = int32(n*ifreqSize), &buf[0]
	}
	err := ioctl(fd, unix.SIOCGIFCONF, unsafe.Pointer(&ic))
	return ic.Len, buf[:max(min(int(ic.Len), len(buf)), 0)], err
}

func udpSocket(tb testing.TB) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	return fd
}

// foreignSocket returns a socket of a fresh network namespace: what a
// host socket is to a container.
func foreignSocket(tb testing.TB) int {
	if os.Geteuid() != 0 {
		tb.Skip("needs root for a network namespace")
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread leaves with its namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		ch <- result{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		tb.Fatalf("socket in a new network namespace: %v", r.err)
	}
	tb.Cleanup(func() { unix.Close(r.fd) })
	return r.fd
}

// TestGuardOwnSockets checks that the guarded requests on the
// namespace's own sockets answer exactly as the kernel does unguarded.
func TestGuardOwnSockets(t *testing.T) {
	f := startFiltered(t)
	fd := udpSocket(t)
	same := func(name string, call func() (any, error)) {
		t.Helper()
		wantV, wantErr := call()
		var gotV any
		var gotErr error
		f.do(func() { gotV, gotErr = call() })
		if !errors.Is(gotErr, wantErr) && gotErr != wantErr {
			t.Errorf("%s: guarded error %v, unguarded %v", name, gotErr, wantErr)
		}
		if !equal(gotV, wantV) {
			t.Errorf("%s: guarded %v, unguarded %v", name, gotV, wantV)
		}
	}
	for _, n := range []int{-1, 0, 1, 64} {
		same("SIOCGIFCONF", func() (any, error) { l, b, err := interfaces(fd, n); return [2]any{l, b}, err })
	}
	for _, cmd := range []uint32{unix.SIOCGIFINDEX, unix.SIOCGIFADDR, unix.SIOCGIFFLAGS, unix.SIOCGIFMTU,
		unix.SIOCGIFNETMASK, unix.SIOCGIFHWADDR, unix.SIOCGIFTXQLEN, unix.SIOCGIFMAP} {
		for _, name := range []string{"lo", "nosuchif0"} {
			same(name, func() (any, error) { ifr, err := ifreqCall(fd, cmd, name); return *ifr, err })
		}
	}
	same("SIOCGIFNAME", func() (any, error) {
		ifr, _ := unix.NewIfreq("")
		ifr.SetUint32(1)
		err := unix.IoctlIfreq(fd, unix.SIOCGIFNAME, ifr)
		return ifr.Name(), err
	})
	same("SIOCGARP", func() (any, error) {
		req := make([]byte, arpreqSize)
		req[0] = unix.AF_INET // arp_pa 127.0.0.2: no entry
		copy(req[4:], []byte{127, 0, 0, 2})
		copy(req[52:], "lo")
		err := ioctl(fd, unix.SIOCGARP, unsafe.Pointer(&req[0]))
		return req, err
	})
	same("SIOCETHTOOL (continued)", func() (any, error) {
		ethtoolValue = [2]uint32{0x0000000a} // ETHTOOL_GLINK
		var ifr [ifreqSize]byte
		copy(ifr[:], "lo")
		binary.LittleEndian.PutUint64(ifr[16:], uint64(uintptr(unsafe.Pointer(&ethtoolValue))))
		err := ioctl(fd, unix.SIOCETHTOOL, unsafe.Pointer(&ifr))
		return ethtoolValue, err
	})
	same("bad address", func() (any, error) { return nil, ioctlAt(fd, unix.SIOCGIFINDEX, 8) })
	same("closed fd", func() (any, error) { return nil, ioctl(1<<20, unix.SIOCGIFINDEX, nil) })
	pipe := make([]int, 2)
	if err := unix.Pipe2(pipe, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	same("pipe SIOCGIFINDEX", func() (any, error) { _, err := ifreqCall(pipe[0], unix.SIOCGIFINDEX, "lo"); return nil, err })
	same("pipe SIOCGIFCONF", func() (any, error) { _, _, err := interfaces(pipe[0], 4); return nil, err })

	var err error
	f.do(func() { err = ioctl(fd, unix.SIOCGSKNS, nil) })
	if err != unix.EPERM {
		t.Errorf("SIOCGSKNS guarded: %v, want EPERM", err)
	}
}

// ethtoolValue is a global so that it does not move while the kernel
// writes to it through a pointer inside struct ifreq.
var ethtoolValue [2]uint32

func equal(a, b any) bool {
	if x, ok := a.([2]any); ok {
		y := b.([2]any)
		return x[0] == y[0] && bytes.Equal(x[1].([]byte), y[1].([]byte))
	}
	if x, ok := a.([]byte); ok {
		return bytes.Equal(x, b.([]byte))
	}
	return a == b
}

// TestGuardForeignSocket checks that nothing is done on a socket of
// another network namespace, and that the passed requests still work.
func TestGuardForeignSocket(t *testing.T) {
	fd := foreignSocket(t)
	f := startFiltered(t)
	f.do(func() {
		if _, _, err := interfaces(fd, 16); err != unix.ENODEV {
			t.Errorf("SIOCGIFCONF: %v, want ENODEV", err)
		}
		if _, err := ifreqCall(fd, unix.SIOCGIFINDEX, "lo"); err != unix.ENODEV {
			t.Errorf("SIOCGIFINDEX: %v, want ENODEV", err)
		}
		if _, err := ifreqCall(fd, unix.SIOCSIFMTU, "lo"); err != unix.ENODEV {
			t.Errorf("SIOCSIFMTU: %v, want ENODEV", err)
		}
		if err := ioctl(fd, unix.SIOCGSKNS, nil); err != unix.EPERM {
			t.Errorf("SIOCGSKNS: %v, want EPERM", err)
		}
		if _, err := unix.IoctlGetInt(fd, unix.SIOCINQ); err != nil {
			t.Errorf("SIOCINQ (not guarded): %v", err)
		}
	})
}

// BenchmarkIoctl compares system calls on a filtered thread with the
// same on an unfiltered one.
func BenchmarkIoctl(b *testing.B) {
	fd := udpSocket(b)
	cases := []struct {
		name string
		call func()
	}{
		{"getppid", func() { unix.Getppid() }},
		{"SIOCINQ", func() { unix.IoctlGetInt(fd, unix.SIOCINQ) }},
		{"SIOCGIFINDEX", func() { ifreqCall(fd, unix.SIOCGIFINDEX, "lo") }},
	}
	f := startFiltered(b)
	for _, c := range cases {
		b.Run(c.name+"/unfiltered", func(b *testing.B) {
			for range b.N {
				c.call()
			}
		})
		b.Run(c.name+"/filtered", func(b *testing.B) {
			f.do(func() {
				for range b.N {
					c.call()
				}
			})
		})
	}
}
