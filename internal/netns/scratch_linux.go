package netns

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Scratch is an unnamed network namespace held open by a file descriptor:
// it lives until Close and no other process in it remains. Nothing is
// created in /run/netns.
type Scratch struct {
	fd int
}

// NewScratch creates an unnamed network namespace.
func NewScratch() (*Scratch, error) {
	var scratch *Scratch
	err := onNewThreadNamespace(func() error {
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening the new namespace: %w", err)
		}
		scratch = &Scratch{fd: fd}
		return nil
	})
	if err != nil {
		if scratch != nil {
			scratch.Close()
		}
		return nil, fmt.Errorf("creating a scratch network namespace: %w", err)
	}
	return scratch, nil
}

// Path names the namespace for tools that take a path (nsenter --net=,
// ip -n does not): /proc/PID/fd/N of this process.
func (scratch *Scratch) Path() string {
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), scratch.fd)
}

// Fd is the descriptor that holds the namespace.
func (scratch *Scratch) Fd() int { return scratch.fd }

// Do runs fn on a locked OS thread inside the namespace.
func (scratch *Scratch) Do(fn func() error) error {
	runtime.LockOSThread()
	origin, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer unix.Close(origin)
	if err := unix.Setns(scratch.fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering the scratch namespace: %w", err)
	}
	fnErr := fn()
	if err := unix.Setns(origin, unix.CLONE_NEWNET); err != nil {
		return errors.Join(fnErr, fmt.Errorf("leaving the scratch namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Close releases the descriptor; the namespace goes when nothing else
// holds it.
func (scratch *Scratch) Close() error {
	if scratch.fd < 0 {
		return nil
	}
	err := unix.Close(scratch.fd)
	scratch.fd = -1
	return err
}
