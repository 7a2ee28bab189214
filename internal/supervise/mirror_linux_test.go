package supervise

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestMirror: a file the program never holds (the host listener, here a
// pipe) registered under the number of the program's own registered file
// wakes the program's epoll instance with the program's data; the
// program's DEL under its number removes only its own registration;
// holdsOwn sees the mirrored one until its last file is closed, and a
// second mirroring replaces it rather than fail.
func TestMirror(t *testing.T) {
	mover := moverOrSkip(t)
	ep := epollInstance(t)
	own := pipe(t)
	var host [2]int // closed by the test: its closing is the withdrawal
	if err := unix.Pipe2(host[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(host[1])
	n := own[0] // the program's listener's number
	ev := epollEvent(unix.EPOLLIN|unix.EPOLLET, 42)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, n, &ev); err != nil {
		t.Fatal(err)
	}
	hostCopy := host[0] // the supervisor's only copy, closed below
	tid := unix.Gettid()
	if held, err := holdsOwn(tid, ep, n, hostCopy); err != nil || held {
		t.Fatalf("holdsOwn before mirroring = %v, %v", held, err)
	}
	regs := []registration{{epfd: ep, events: unix.EPOLLIN | unix.EPOLLET, data: 42}}
	for range 2 {
		epCopy, _ := unix.Dup(ep)
		err := mover.move(n, regs, []int{epCopy}, hostCopy, hostCopy)
		unix.Close(epCopy)
		if err != nil {
			t.Fatal(err)
		}
	}
	if held, err := holdsOwn(tid, ep, n, hostCopy); err != nil || !held {
		t.Fatalf("holdsOwn after mirroring = %v, %v", held, err)
	}
	unix.Write(host[1], []byte("x"))
	events := make([]unix.EpollEvent, 4)
	got, err := unix.EpollWait(ep, events, 1000)
	if err != nil || got != 1 || epollData(events[0]) != 42 {
		t.Fatalf("epoll_wait = %d, %v; want one event with the program's data", got, err)
	}
	// The program's DEL finds its own file: the mirrored one stays.
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, n, nil); err != nil {
		t.Fatal(err)
	}
	if held, _ := holdsOwn(tid, ep, n, hostCopy); !held {
		t.Error("the program's DEL removed the mirrored registration")
	}
	// Withdrawn: its last file closed drops the registration.
	unix.Close(hostCopy)
	unix.Write(host[1], []byte("y"))
	if got, _ := unix.EpollWait(ep, events, 0); got != 0 {
		t.Errorf("%d events after the host file was closed", got)
	}
}
