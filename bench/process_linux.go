package bench

import (
	"github.com/slimnet/slim/lab"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// serverStarted is called with the process ID of every server started;
// tests use it to check that none survives.
var serverStarted = func(pid int) {}

// server is a server process running in the scenario's server node.
type server struct {
	name    string
	cmd     *exec.Cmd
	output  *tailBuffer
	done    chan struct{} // closed once the process is reaped
	waitErr error         // set before done is closed
}

// command builds the command that runs argv, a tool and its arguments, in
// node: the tool's path, the scenario's wrapping, the sample's directory,
// and a process group of its own so that it and its children can be
// signalled together (and a Ctrl-C on the terminal reaches slim only).
func (s *sample) command(ctx context.Context, node lab.Node, argv []string) *exec.Cmd {
	path, ok := s.tools[argv[0]]
	if !ok {
		path = argv[0]
	}
	full := s.Wrap(node, append([]string{path}, argv[1:]...))
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Dir = s.dir
	// Pdeathsig: should slim die, its servers and clients die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// startServer starts argv in the scenario's server node, in cg unless it
// is nil.
func (s *sample) startServer(argv []string, cg *cgroup) (*server, error) {
	cmd := s.command(context.Background(), s.Server, argv)
	if cg != nil {
		cg.startIn(cmd)
	}
	output := newTailBuffer(4096)
	cmd.Stdout, cmd.Stderr = output, output
	if err := s.Server.Start(cmd); err != nil {
		return nil, fmt.Errorf("starting %s in %s: %w", argv[0], s.Server.Name, err)
	}
	serverStarted(cmd.Process.Pid)
	srv := &server{name: argv[0], cmd: cmd, output: output, done: make(chan struct{})}
	go func() {
		srv.waitErr = cmd.Wait()
		close(srv.done)
	}()
	return srv, nil
}

func (srv *server) exited() bool {
	select {
	case <-srv.done:
		return true
	default:
		return false
	}
}

// exitReport describes how a server that exited ended, with the end of
// its output. Only call it once exited is true.
func (srv *server) exitReport() string {
	status := "exited"
	if srv.waitErr != nil {
		status = srv.waitErr.Error()
	}
	return fmt.Sprintf("%s %s: %s", srv.name, status, tail(srv.output.Bytes()))
}

// stop ends the server and its children: SIGTERM to its process group,
// SIGKILL if it is still there after stopGrace, then SIGKILL to whatever
// is left of the group once the server itself is reaped, and a short wait
// for that to go.
func (srv *server) stop() error {
	pid := srv.cmd.Process.Pid
	if !srv.exited() {
		_ = killGroup(pid, syscall.SIGTERM)
		select {
		case <-srv.done:
		case <-time.After(stopGrace):
			_ = killGroup(pid, syscall.SIGKILL)
			select {
			case <-srv.done:
			case <-time.After(stopGrace):
				return fmt.Errorf("%s (pid %d) survived SIGKILL", srv.name, pid)
			}
		}
	}
	_ = killGroup(pid, syscall.SIGKILL)
	waitGroupGone(pid, stopGrace)
	return nil
}

// waitGroupGone waits, for at most limit, until no process is left in the
// process group led by pid: its last children, killed, may take a moment
// to be reaped by their new parent.
func waitGroupGone(pid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for syscall.Kill(-pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// runClient runs argv in the scenario's client node and returns its
// standard output. The client is killed if it runs clientGrace beyond the
// sample's duration or if ctx is cancelled.
func (s *sample) runClient(ctx context.Context, argv ...string) ([]byte, error) {
	return s.runClientWith(ctx, clientHooks{}, argv...)
}

// clientHooks change how a client runs: in a cgroup of its own, for
// longer than the sample's duration, or with every line it prints handed
// to a function as it comes.
type clientHooks struct {
	cgroup *cgroup
	extra  time.Duration // beyond the sample's duration (warm-up)
	// onLine gets each line of standard output ("stdout") and error
	// ("stderr"), with the client's process ID.
	onLine func(stream, line string, pid int)
}

// runClientWith is runClient with hooks.
func (s *sample) runClientWith(ctx context.Context, hooks clientHooks, argv ...string) ([]byte, error) {
	limit := s.duration + hooks.extra + clientGrace
	runCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := s.command(runCtx, s.Client, argv)
	if hooks.cgroup != nil {
		hooks.cgroup.startIn(cmd)
	}
	var stdout bytes.Buffer
	stderr := newTailBuffer(4096)
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if hooks.onLine != nil {
		// os/exec sets cmd.Process before it starts copying output.
		pid := func() int { return cmd.Process.Pid }
		cmd.Stdout = io.MultiWriter(&stdout, newLineWriter(func(line string) { hooks.onLine("stdout", line, pid()) }))
		cmd.Stderr = io.MultiWriter(stderr, newLineWriter(func(line string) { hooks.onLine("stderr", line, pid()) }))
	}
	if err := s.Client.Start(cmd); err != nil {
		return nil, fmt.Errorf("starting %s in %s: %w", argv[0], s.Client.Name, err)
	}
	err := cmd.Wait()
	switch {
	case err == nil:
		return stdout.Bytes(), nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("%s did not finish within %v", argv[0], limit)
	}
	detail := stderr.Bytes()
	if len(bytes.TrimSpace(detail)) == 0 {
		detail = stdout.Bytes()
	}
	return nil, fmt.Errorf("%s in %s: %w: %s", filepath.Base(argv[0]), s.Client.Name, err, tail(detail))
}

// killGroup signals the process group led by pid; a group that is gone
// is not an error.
func killGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling process group %d: %w", pid, err)
	}
	return nil
}
