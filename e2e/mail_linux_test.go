package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"
)

// Mail servers under slim exec, whose process models are not a server
// accepting on its own listener: Postfix's master opens the SMTP listener
// and its smtpd processes, started by fork+exec with an environment the
// master rebuilt, inherit it and accept from it (chrooted); Dovecot's
// master opens the IMAP listener, waits for it to be readable, then starts
// an imap-login process (fork+exec, its own environment, chrooted) that
// accepts, logs the user in and hands the connection to an imap process
// over a unix socket (SCM_RIGHTS).

const (
	smtpPort     = 25
	imapPort     = 143
	mailsBySlim  = 10
	mailBodySize = 48 << 10 // 10 of them: ~500 KiB, over maxStrayOverlayBytes
)

// TestIntegrationMailServers: Postfix and Dovecot in h1-c1 under slim
// exec; swaks sends mail from h2-c1 under slim exec and from containers
// without Slim, curl fetches it over IMAP; every message arrives once and
// intact, both servers log the clients' overlay addresses, the
// connections of clients under Slim are host connections (nothing over
// VXLAN), and stopping the servers leaves no directory entry, host
// listener or process behind. Then Postfix relays mail for remote.test to
// a second Postfix in h2-c1 (its smtp client is chrooted too).
func TestIntegrationMailServers(t *testing.T) {
	testenv.Tools(t, "postfix", "dovecot", "swaks", "curl", "bash")
	l := newLab(t, "mail")
	server, relay := l.containerAddr("h1-c1"), l.containerAddr("h2-c1")
	d := prepareMail(t, "example.test", "remote.test", relay)
	started := time.Now()
	postfix := l.startPostfix("h1-c1", d)
	dovecot := l.start("h1-c1", true, "dovecot", "-F", "-c", d.dovecotConfig())
	dovecot.waitFor("starting up", 20*time.Second)
	l.waitForDirectory("h2", server, smtpPort, 10*time.Second)
	l.waitForDirectory("h2", server, imapPort, 10*time.Second)
	t.Logf("Postfix and Dovecot up in %v", time.Since(started).Round(time.Millisecond))

	var sent []mailMessage
	t.Run("smtp", func(t *testing.T) {
		l.t = t
		sent = sendMail(t, l, d, server, postfix)
	})
	t.Run("imap", func(t *testing.T) {
		l.t = t
		fetchMail(t, l, server, sent, dovecot)
	})
	t.Run("held sessions", func(t *testing.T) {
		l.t = t
		holdSession(t, l, server, smtpPort, "220 ", "QUIT")
		holdSession(t, l, server, imapPort, "* OK", "a LOGOUT")
	})
	t.Run("relay", func(t *testing.T) {
		l.t = t
		relayMail(t, l, server, relay, postfix)
	})
	t.Run("stop", func(t *testing.T) {
		l.t = t
		stopMailServers(t, l, "h1-c1", []int{smtpPort, imapPort}, postfixStop(d, postfix), dovecotStop(d, dovecot))
	})
	for _, p := range []*program{postfix, dovecot} {
		checkSupervised(t, p)
	}
}

// sendMail sends mailsBySlim messages from h2-c1 under slim exec (one
// swaks, one connection each) and one from each container without Slim,
// and checks what Postfix logged and delivered.
func sendMail(t *testing.T, l *testLab, d mailDir, server string, postfix *program) []mailMessage {
	bodies := t.TempDir()
	var sent []mailMessage
	send := func(node string, slim bool, m mailMessage) {
		file := filepath.Join(bodies, strings.ReplaceAll(m.subject, " ", "-"))
		if err := os.WriteFile(file, []byte(m.body), 0o644); err != nil {
			t.Fatal(err)
		}
		p := l.start(node, slim, "swaks", "--server", server, "--to", "alice@example.test",
			"--from", "bob@example.org", "--header", "Subject: "+m.subject, "--body", "@"+file,
			"--suppress-data")
		err := p.wait(20 * time.Second)
		wantOutput(t, "swaks from "+node, p.output(), err, "250 2.0.0 Ok: queued as")
		if slim {
			checkSupervised(t, p)
		}
		sent = append(sent, m)
	}
	before := l.vxlanBytes("h1")
	start := time.Now()
	for i := 0; i < mailsBySlim; i++ {
		send("h2-c1", true, newMessage("h2-c1", i, mailBodySize))
	}
	crossed := l.vxlanBytes("h1") - before
	t.Logf("%d messages of %d KiB from h2-c1 in %v: %d bytes over VXLAN", mailsBySlim,
		mailBodySize>>10, time.Since(start).Round(time.Millisecond), crossed)
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed VXLAN while h2-c1 sent mail under slim exec", crossed)
	}
	for _, node := range []string{"h2-c2", "h1-c2"} {
		send(node, false, newMessage(node, 0, 4<<10))
	}
	waitDelivered(t, d, len(sent), postfix)
	checkPostfixLog(t, l, postfix.output())
	return sent
}

// waitDelivered waits until alice's Maildir holds want messages and
// Postfix's log says as many were delivered.
func waitDelivered(t *testing.T, d mailDir, want int, postfix *program) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		files := maildirFiles(d)
		logged := len(linesWith(postfix.output(), "status=sent (delivered to maildir)"))
		if len(files) == want && logged == want {
			return
		}
		if time.Now().After(deadline) || len(files) > want {
			t.Fatalf("%d messages in the Maildir, %d delivered in Postfix's log, want %d:\n%s",
				len(files), logged, want, tail(postfix.output(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// maildirFiles lists the messages of alice's Maildir (new and cur).
func maildirFiles(d mailDir) []string {
	var files []string
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(d.maildir(), sub))
		for _, e := range entries {
			files = append(files, filepath.Join(sub, e.Name()))
		}
	}
	return files
}

var smtpdConnect = regexp.MustCompile(`postfix/smtpd\[\d+\]: connect from [^\[]*\[([0-9.]+)\]`)

// checkPostfixLog: smtpd saw each client at its overlay address, never a
// host address.
func checkPostfixLog(t *testing.T, l *testLab, log string) {
	seen := map[string]int{}
	for _, m := range smtpdConnect.FindAllStringSubmatch(log, -1) {
		seen[m[1]]++
	}
	want := map[string]int{l.containerAddr("h2-c1"): mailsBySlim, l.containerAddr("h2-c2"): 1, l.containerAddr("h1-c2"): 1}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("smtpd's connections by client address: %v, want %v:\n%s", seen, want, tail(log, 20))
	}
	if strings.Contains(log, "198.18.") {
		t.Errorf("a host address reached Postfix's log:\n%s", strings.Join(linesWith(log, "198.18."), "\n"))
	}
	if bad := append(linesWith(log, "fatal:"), linesWith(log, "warning:")...); len(bad) > 0 {
		t.Errorf("Postfix complained:\n%s", strings.Join(bad, "\n"))
	}
}

var imapSearch = regexp.MustCompile(`\* SEARCH((?: \d+)*)`)

// fetchMail lists the INBOX and fetches every message with curl from
// h2-c1 under slim exec, then one without Slim from h2-c2.
func fetchMail(t *testing.T, l *testLab, server string, sent []mailMessage, dovecot *program) {
	inbox := "imap://" + server + "/INBOX"
	out, err := l.curl("h2-c1", true, "-u", mailUser, inbox, "-X", "SEARCH ALL")
	m := imapSearch.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("curl SEARCH ALL: %v\n%s\n%s", err, out, tail(dovecot.output(), 10))
	}
	uids := strings.Fields(m[1])
	if len(uids) != len(sent) {
		t.Fatalf("the INBOX holds %d messages (%v), want %d", len(uids), uids, len(sent))
	}
	before := l.vxlanBytes("h1")
	start := time.Now()
	var got []string
	for _, uid := range uids {
		out, err := l.curl("h2-c1", true, "-u", mailUser, inbox+";UID="+uid)
		if err != nil {
			t.Fatalf("curl UID %s: %v\n%s", uid, err, out)
		}
		got = append(got, strings.ReplaceAll(out, "\r\n", "\n"))
	}
	crossed := l.vxlanBytes("h1") - before
	t.Logf("%d messages fetched over IMAP in %v: %d bytes over VXLAN", len(uids),
		time.Since(start).Round(time.Millisecond), crossed)
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed VXLAN while h2-c1 fetched mail under slim exec", crossed)
	}
	checkFetched(t, l, sent, got)
	out, err = l.curl("h2-c2", false, "-u", mailUser, inbox+";UID="+uids[0])
	wantOutput(t, "curl IMAP from h2-c2 without Slim", out, err, "Subject: slim ")
	checkDovecotLog(t, l, dovecot.output(), len(uids)+2)
}

// checkFetched: each message sent was fetched once, with its body intact
// and a Received header naming its sender's overlay address.
func checkFetched(t *testing.T, l *testLab, sent []mailMessage, got []string) {
	for _, m := range sent {
		var found []string
		for _, msg := range got {
			if strings.Contains(msg, "\nSubject: "+m.subject+"\n") {
				found = append(found, msg)
			}
		}
		if len(found) != 1 {
			t.Errorf("%q fetched %d times", m.subject, len(found))
			continue
		}
		if !strings.Contains(found[0], "\n\n"+m.body) {
			t.Errorf("%q: the body fetched is not the body sent", m.subject)
		}
		sender := strings.Fields(m.subject)[1]
		if want := "[" + l.containerAddr(sender) + "])"; !strings.Contains(found[0], want) {
			t.Errorf("%q: no Received header with %s:\n%s", m.subject, want, strings.Join(linesWith(found[0], "Received"), "\n"))
		}
	}
}

// checkDovecotLog: every login of the user logged the client's overlay
// address (rip), none a host address.
func checkDovecotLog(t *testing.T, l *testLab, log string, logins int) {
	rips := map[string]int{}
	for _, line := range linesWith(log, "Login: user=<alice>") {
		_, rest, _ := strings.Cut(line, "rip=")
		rip, _, _ := strings.Cut(rest, ",")
		rips[rip]++
	}
	want := map[string]int{l.containerAddr("h2-c1"): logins - 1, l.containerAddr("h2-c2"): 1}
	if fmt.Sprint(rips) != fmt.Sprint(want) {
		t.Errorf("Dovecot's logins by client address: %v, want %v:\n%s", rips, want, tail(log, 10))
	}
	if strings.Contains(log, "198.18.") || strings.Contains(log, "slim:") {
		t.Errorf("Dovecot's log has a host address or a line of the shim:\n%s",
			strings.Join(append(linesWith(log, "198.18."), linesWith(log, "slim:")...), "\n"))
	}
}
