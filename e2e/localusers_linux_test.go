package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"
	"github.com/slimnet/slim/lab"
)

// TestIntegrationLocalUserReads (issue 9, item 18): what an unprivileged
// user of a host can read of Slim is what docs/secure.md says. Configs,
// state, logs, the directory table and the cluster key are root's; the
// router's socket is reachable (every container's programs need it) but
// answers containers only. A program of a container running as that user
// still gets its connections accelerated: its shim gets the directory
// table from the router.
func TestIntegrationLocalUserReads(t *testing.T) {
	testenv.Tools(t, "setpriv")
	l := newLab(t, "lur")
	const port = 7601
	startHoldServer(l, "h2-c1", "h1", port)
	dir := l.RouterDir("h1")
	private := []string{
		"read:" + filepath.Join(dir, "router.json"),
		"read:" + filepath.Join(dir, "directory"),
		"read:" + filepath.Join(dir, "router.state"),
		"read:" + filepath.Join(dir, "router.log"),
		"read:" + l.ClusterKeyPath(),
		"read:" + filepath.Join(lab.StateDir, l.Name+".json"),
		"list:" + dir,
		"list:" + filepath.Join(lab.StateDir, l.Name),
		"list:" + lab.StateDir,
		"connect:" + filepath.Join(dir, "control.sock"),
	}
	hello := "hello:" + filepath.Join(dir, "router.sock")
	reserve := "reserve:" + filepath.Join(dir, "router.sock")
	namebook := "namebook:" + filepath.Join(dir, "router.sock")
	reader := l.startAs("h1", nobody, append([]string{systemPython, testdataPath("localreader.py")}, append(private, hello, reserve, namebook)...)...)
	if err := reader.wait(30 * time.Second); err != nil {
		t.Fatalf("reader: %v\n%s", err, reader.output())
	}
	out := reader.output()
	for _, check := range private {
		if !strings.Contains(out, check+" EACCES\n") {
			t.Errorf("uid %d: %s did not fail with EACCES:\n%s", nobody, check, out)
		}
	}
	if want := fmt.Sprintf("%s OK 0xff EPERM\n", hello); !strings.Contains(out, want) {
		t.Errorf("uid %d: HELLO on the router socket from the host: want an EPERM refusal (%q):\n%s", nobody, want, out)
	}
	// RESERVE and NAMEBOOK (a directory entry, a container's name book)
	// are refused the same way: no entry, no memfd for a host user.
	for _, check := range []string{reserve, namebook} {
		if want := check + " OK 0xff EPERM 0 fds\n"; !strings.Contains(out, want) {
			t.Errorf("uid %d: %s from the host: want an EPERM refusal without descriptors (%q):\n%s", nobody, check, want, out)
		}
	}

	// A program of h1-c1 running as the same user, under slim exec.
	client := l.start("h1-c1", true, "setpriv", "--reuid", strconv.Itoa(nobody), "--regid", strconv.Itoa(nobody), "--clear-groups",
		systemPython, holdScript(), "client", l.containerAddr("h2-c1"), strconv.Itoa(port))
	client.waitFor("CONNECTED", 10*time.Second)
	if conns := l.hostConnections("h1"); len(conns) == 0 {
		t.Errorf("the connection of uid %d in h1-c1 was not accelerated (no host connection on h1):\n%s", nobody, client.output())
	}
}
