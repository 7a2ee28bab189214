package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// relayBodySize is the relayed message's body: over maxStrayOverlayBytes.
const relayBodySize = 384 << 10

// relayMail: a second Postfix, for remote.test, in h2-c1 under slim exec.
// A message for remote.test, sent from h2-c1 to the first Postfix, is
// relayed by the first's smtp client (chrooted to its queue directory, as
// Debian's master.cf has it) to the second over a host connection: it
// arrives once and intact, the second logs the first's overlay address,
// and nothing crosses VXLAN. Stopping the second leaves nothing behind.
func relayMail(t *testing.T, l *testLab, server, relay string, first *program) {
	d := prepareMail(t, "remote.test", "", "")
	second := l.startPostfix("h2-c1", d)
	l.waitForDirectory("h1", relay, smtpPort, 10*time.Second)
	m := newMessage("relayed", 0, relayBodySize)
	file := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(file, []byte(m.body), 0o644); err != nil {
		t.Fatal(err)
	}
	before := l.vxlanBytes("h1")
	p := l.start("h2-c1", true, "swaks", "--server", server, "--to", "alice@remote.test",
		"--from", "bob@example.org", "--header", "Subject: "+m.subject, "--body", "@"+file, "--suppress-data")
	err := p.wait(20 * time.Second)
	wantOutput(t, "swaks to the first Postfix", p.output(), err, "250 2.0.0 Ok: queued as")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the first Postfix's log:\n%s", tail(first.output(), 10))
		}
	})
	waitDelivered(t, d, 1, second)
	crossed := l.vxlanBytes("h1") - before
	t.Logf("a message of %d KiB sent and relayed: %d bytes over VXLAN", relayBodySize>>10, crossed)
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed VXLAN while Postfix relayed a message under slim exec", crossed)
	}
	want := fmt.Sprintf("to=<alice@remote.test>, relay=%s[%s]:25", relay, relay)
	if sent := linesWith(first.output(), want); len(sent) != 1 || !strings.Contains(sent[0], "status=sent") {
		t.Errorf("the first Postfix's log has no delivery %s, status=sent:\n%s", want, tail(first.output(), 10))
	}
	checkRelayed(t, l, d, m, second.output(), server)
	stopMailServers(t, l, "h2-c1", []int{smtpPort}, postfixStop(d, second))
}

// checkRelayed: the second Postfix took the message from the first's
// overlay address and stored it intact.
func checkRelayed(t *testing.T, l *testLab, d mailDir, m mailMessage, log, from string) {
	seen := map[string]int{}
	for _, c := range smtpdConnect.FindAllStringSubmatch(log, -1) {
		seen[c[1]]++
	}
	if len(seen) != 1 || seen[from] != 1 {
		t.Errorf("the second Postfix's connections by client address: %v, want one from %s", seen, from)
	}
	if bad := append(linesWith(log, "198.18."), append(linesWith(log, "fatal:"), linesWith(log, "warning:")...)...); len(bad) > 0 {
		t.Errorf("the second Postfix's log:\n%s", strings.Join(bad, "\n"))
	}
	files := maildirFiles(d)
	if len(files) != 1 {
		t.Fatalf("%d messages relayed, want 1", len(files))
	}
	stored, err := os.ReadFile(filepath.Join(d.maildir(), files[0]))
	if err != nil || !strings.Contains(string(stored), "\nSubject: "+m.subject+"\n") ||
		!strings.Contains(string(stored), "\n\n"+m.body) {
		t.Errorf("the relayed message is not the one sent (%v)", err)
	}
}
