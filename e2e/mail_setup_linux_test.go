package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What a user writes to run Postfix and Dovecot for one local domain, in a
// directory of their own: Postfix delivers mail for example.test into
// Maildirs under DIR/mail (as nobody: a virtual domain needs no system
// user), Dovecot serves them over IMAP to a user of a passwd-file. Both
// log to their own output (Postfix's maillog_file, for containers since
// 3.4). Postfix's master.cf is Debian's, as the package installs it
// (smtpd chrooted to the queue directory); Dovecot keeps its defaults
// (imap-login chrooted to DIR/run/login, one process per login).
const (
	postfixMainCf = `compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
myhostname = mail.%[2]s
mydestination =
alias_maps =
virtual_mailbox_domains = %[2]s
virtual_mailbox_base = %[1]s/mail
virtual_mailbox_maps = texthash:%[1]s/postfix/mailboxes
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
maillog_file = /dev/stdout
`
	postfixMailboxes = "alice@%s alice/Maildir/\n"
	// What a user adds to hand mail for another domain to its server.
	postfixRelay = `relay_domains = %[2]s
transport_maps = texthash:%[1]s/postfix/transport
`
	postfixTransport = "%s smtp:[%s]:25\n"
	dovecotConf      = `protocols = imap
base_dir = %[1]s/run
log_path = /dev/stderr
ssl = no
disable_plaintext_auth = no
passdb {
  driver = passwd-file
  args = %[1]s/dovecot/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=%[1]s/mail/%%u
}
mail_location = maildir:~/Maildir
`
	dovecotUsers = "alice:{PLAIN}secret\n"
	mailUser     = "alice:secret"
)

// mailDir is the directory both servers work in.
type mailDir struct {
	root string
}

// postfixConfig is Postfix's config directory (postfix -c).
func (d mailDir) postfixConfig() string { return filepath.Join(d.root, "postfix") }

// dovecotConfig is Dovecot's config file (dovecot -c).
func (d mailDir) dovecotConfig() string { return filepath.Join(d.root, "dovecot", "dovecot.conf") }

// maildir is alice's Maildir.
func (d mailDir) maildir() string { return filepath.Join(d.root, "mail", "alice", "Maildir") }

// prepareMail writes both configs, for mail to domain, under a fresh
// directory that the servers' users (postfix, nobody, dovecot) can enter.
// Mail for relay (if not empty) goes to the Postfix at relayServer.
func prepareMail(t *testing.T, domain, relay, relayServer string) mailDir {
	root, err := os.MkdirTemp("", "slim-mail")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	d := mailDir{root}
	files := map[string]string{
		"postfix/main.cf":      fmt.Sprintf(postfixMainCf, root, domain),
		"postfix/mailboxes":    fmt.Sprintf(postfixMailboxes, domain),
		"dovecot/dovecot.conf": fmt.Sprintf(dovecotConf, root),
		"dovecot/users":        dovecotUsers,
	}
	for _, sub := range []string{"postfix", "dovecot", "queue", "mail"} {
		if err := os.Mkdir(filepath.Join(root, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if relay != "" {
		files["postfix/main.cf"] += fmt.Sprintf(postfixRelay, root, relay)
		files["postfix/transport"] = fmt.Sprintf(postfixTransport, relay, relayServer)
	}
	master, err := os.ReadFile("/etc/postfix/master.cf")
	if err != nil {
		t.Fatalf("Debian's postfix package installs /etc/postfix/master.cf: %v", err)
	}
	files["postfix/master.cf"] = string(master)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Postfix's virtual delivery agent writes as nobody (65534).
	for _, p := range []string{root, filepath.Join(root, "mail")} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(root, "mail"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	return d
}

// mailMessage is one message sent: its subject and a body of random
// base64 lines (no line starts with a dot: SMTP's dot-stuffing leaves it
// as is).
type mailMessage struct {
	subject, body string
}

// newMessage makes message i of a run (tag: who sends it).
func newMessage(tag string, i, size int) mailMessage {
	raw := make([]byte, size*3/4)
	rand.Read(raw)
	enc := base64.StdEncoding.EncodeToString(raw)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n")
	return mailMessage{subject: fmt.Sprintf("slim %s %d", tag, i), body: b.String()}
}
