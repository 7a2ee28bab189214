package etcdrun

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Binary is Debian's etcd-server.
const Binary = "etcd"

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Process is a running etcd member.
type Process struct {
	Member Member
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // why it exited, once exited is closed
}

// Starter starts a command somewhere: in a lab host's or a scratch
// network namespace.
type Starter func(*exec.Cmd) error

// Options of a start.
type Options struct {
	// Existing joins a cluster that already ran (a restart, data kept).
	Existing bool
	// Outlive lets the member run on when the starting process exits (a
	// lab's members); otherwise it is killed along with that process.
	Outlive bool
	// LogPath receives the member's log.
	LogPath string
}

// Start runs member i of the cluster with start. It does not wait for
// the member to serve (see WaitReady).
func (c Cluster) Start(i int, start Starter, opts Options) (*Process, error) {
	m := c.Members[i]
	if err := os.MkdirAll(filepath.Dir(m.DataDir), 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(Binary, c.Args(i, opts.Existing)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own session: a Ctrl-C at the terminal goes to whoever started
	// it, who stops it. Pdeathsig: a test that dies takes it along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if !opts.Outlive {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := start(cmd); err != nil {
		return nil, fmt.Errorf("starting etcd member %s: %w", m.Name, err)
	}
	p := &Process{Member: m, cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// Pid is the member's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop ends the member with SIGTERM (SIGKILL if it lingers) and waits.
func (p *Process) Stop() error { return p.end(syscall.SIGTERM) }

// Kill ends the member with SIGKILL, as a crash would, and waits.
func (p *Process) Kill() error { return p.end(syscall.SIGKILL) }

func (p *Process) end(sig syscall.Signal) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopGrace):
	}
	p.cmd.Process.Kill()
	<-p.exited
	return nil
}
