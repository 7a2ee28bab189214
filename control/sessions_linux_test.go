package control

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"
)

// attackerEnv runs the test binary as runSessionAttacker: "PATH N".
const attackerEnv = "SLIM_CONTROL_TEST_ATTACKER"

// nobody is the unprivileged user the attacker runs as.
const nobody = 65534

// attackResult is what the attacker saw: sessions it holds and sessions
// refused with a reply (and the text of one refusal).
type attackResult struct {
	Held    int    `json:"held"`
	Refused int    `json:"refused"`
	Text    string `json:"text"`
}

// TestOtherUsersCannotLockOutRoot: a user the control socket lets in
// (here nobody, as a member of control_group would be) opens 100 idle
// sessions and keeps them. It holds at most MaxClientsPerUser, the
// others are refused with a reply that says why, and root is served at
// once while the user holds them.
func TestOtherUsersCannotLockOutRoot(t *testing.T) {
	testenv.Integration(t)
	dir := worldReadableDir(t)
	path := filepath.Join(dir, SocketName)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Server{Source: &fakeSource{}}).Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })

	attacker := startAsNobody(t, dir, fmt.Sprintf("%s 100", path))
	var res attackResult
	if err := json.NewDecoder(attacker.stdout).Decode(&res); err != nil {
		t.Fatalf("attacker: %v\n%s", err, attacker.stderr.String())
	}
	t.Logf("uid %d: %d sessions held, %d refused (%q)", nobody, res.Held, res.Refused, res.Text)
	if res.Held > MaxClientsPerUser || res.Held+res.Refused != 100 || !strings.Contains(res.Text, "uid 65534") {
		t.Errorf("uid %d held %d sessions, %d refused with %q; want at most %d held, the rest refused naming the uid",
			nobody, res.Held, res.Refused, res.Text, MaxClientsPerUser)
	}
	fetchCtx, fetchCancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer fetchCancel()
	if _, err := Fetch(fetchCtx, path); err != nil {
		t.Errorf("root while uid %d holds its sessions: %v", nobody, err)
	}
}

// worldReadableDir is a temporary directory that nobody may enter.
func worldReadableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "slim-control-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// attackerProcess is a copy of the test binary running as nobody.
type attackerProcess struct {
	stdout io.Reader
	stderr *strings.Builder
}

// startAsNobody runs the test binary (copied where nobody can run it) as
// uid and gid 65534 with attackerEnv=spec; it ends when the test does.
func startAsNobody(t *testing.T, dir, spec string) attackerProcess {
	t.Helper()
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "attacker")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), attackerEnv+"="+spec)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the attacker leaves when its stdin closes
		timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
		defer timer.Stop()
		cmd.Wait()
	})
	return attackerProcess{stdout: stdout, stderr: stderr}
}

// runSessionAttacker opens N control sessions to PATH, keeps those that
// are not refused, prints what it saw and holds them until stdin closes.
func runSessionAttacker(spec string) int {
	path, count, _ := strings.Cut(spec, " ")
	n, _ := strconv.Atoi(count)
	var res attackResult
	var held []net.Conn
	for range n {
		conn, err := net.Dial("unix", path)
		if err != nil {
			res.Text = err.Error()
			res.Refused++
			continue
		}
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		lines := bufio.NewScanner(conn)
		if lines.Scan() {
			var r Reply
			json.Unmarshal(lines.Bytes(), &r)
			res.Text = r.Error
			res.Refused++
			conn.Close()
			continue
		}
		held = append(held, conn)
	}
	res.Held = len(held)
	json.NewEncoder(os.Stdout).Encode(res)
	io.Copy(io.Discard, os.Stdin)
	return 0
}
