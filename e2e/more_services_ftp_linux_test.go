package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vsftpdConfig is what a user writes to serve a directory to anonymous
// clients: vsftpd on its own (listen=YES: every IPv4 address, port 21),
// anonymous read, no local users. The rest is vsftpd's defaults.
const vsftpdConfig = `listen=YES
anonymous_enable=YES
local_enable=NO
anon_root=%s
`

// ftpFileSize is the size of the file fetched: a data connection over
// VXLAN would show there many times over maxStrayOverlayBytes.
const ftpFileSize = 3 << 20

// ftpSmallBody is a small file's content, fetched many times.
const ftpSmallBody = "hello over ftp\n"

// maxPassiveFetch bounds one passive fetch of the small file with
// Python's ftplib (blocking sockets). A fetch takes a few milliseconds;
// when vsftpd's data listener was pending (not yet seen accepting: it
// accepts once RETR comes), every blocking connect to it waited 250 ms,
// then took the overlay.
const maxPassiveFetch = 100 * time.Millisecond

var ftplibFetch = regexp.MustCompile(`fetched (\d+) files of (\d+) bytes, ([0-9.]+) ms each`)

// ftpMode is one way curl opens the data connection and what it then
// shows of the addresses on the control connection.
type ftpMode struct {
	name    string
	args    []string
	shows   string // in curl's trace: the reply or command with the address
	passive bool
}

// ftpModes: passive (curl's default, EPSV; PASV, whose reply carries the
// server's address from its getsockname) and active (EPRT; PORT, which
// carries the client's address from its getsockname, and which vsftpd
// refuses unless it is the control connection's peer).
func ftpModes(server, client string) []ftpMode {
	commas := func(addr string) string { return strings.ReplaceAll(addr, ".", ",") + "," }
	return []ftpMode{
		{"passive EPSV", nil, "< 229 Entering Extended Passive Mode", true},
		{"passive PASV", []string{"--disable-epsv"}, "< 227 Entering Passive Mode (" + commas(server), true},
		{"active EPRT", []string{"-P", "-"}, "> EPRT |1|" + client + "|", false},
		{"active PORT", []string{"-P", "-", "--disable-eprt"}, "> PORT " + commas(client), false},
	}
}

// prepareFTP makes the directory vsftpd serves (readable by its ftp user)
// and its config; it returns the config's path and the big file's content.
func prepareFTP(t *testing.T) (string, []byte) {
	root, err := os.MkdirTemp("", "slim-ftp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	data := make([]byte, ftpFileSize)
	rand.Read(data)
	files := map[string][]byte{"file.bin": data, "small.txt": []byte(ftpSmallBody)}
	pub := filepath.Join(root, "pub")
	if err := os.Mkdir(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(pub, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(root, "vsftpd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(vsftpdConfig, pub)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return conf, data
}

// runVsftpd: vsftpd in h1-c1 under slim exec, curl and Python's ftplib in
// h2-c1 under slim exec fetching in each mode, clients without Slim.
func runVsftpd(t *testing.T, l *testLab) {
	conf, data := prepareFTP(t)
	server, client := l.containerAddr("h1-c1"), l.containerAddr("h2-c1")
	ftpd := l.start("h1-c1", true, "vsftpd", conf)
	l.waitForDirectory("h2", server, 21, 10*time.Second)
	got := filepath.Join(t.TempDir(), "got")
	for _, mode := range ftpModes(server, client) {
		os.Remove(got)
		before := l.vxlanBytes("h1")
		out, err := l.curl("h2-c1", true, append(mode.args, "-v", "-o", got, "ftp://"+server+"/file.bin")...)
		crossed := l.vxlanBytes("h1") - before
		fetched, _ := os.ReadFile(got)
		t.Logf("curl %s: %d bytes over VXLAN", mode.name, crossed)
		switch {
		case err != nil || !bytes.Equal(fetched, data):
			t.Errorf("curl %s: %v, %d of %d bytes right:\n%s", mode.name, err, len(fetched), len(data), tail(out, 20))
		case !strings.Contains(out, mode.shows):
			t.Errorf("curl %s: no %q on the control connection:\n%s", mode.name, mode.shows, tail(out, 20))
		case mode.passive && crossed > maxStrayOverlayBytes:
			t.Errorf("curl %s: %d bytes crossed VXLAN: the data connection is not accelerated", mode.name, crossed)
		}
	}
	checkFtplib(t, l, server)
	for _, node := range []string{"h2-c2", "h1-c2"} {
		out, err := l.curl(node, false, "ftp://"+server+"/small.txt")
		wantOutput(t, "curl from "+node+" without Slim", out, err, ftpSmallBody)
	}
	l.stopService(ftpd, "h1-c1", 21, false)
	checkSupervised(t, ftpd)
}

// checkFtplib fetches the small file 20 times in each mode with Python's
// ftplib under slim exec: passive fetches must not wait.
func checkFtplib(t *testing.T, l *testLab, server string) {
	for _, mode := range []string{"pasv", "port"} {
		p := l.start("h2-c1", true, "/usr/bin/python3", testdataPath("ftpfetch.py"), server, "small.txt", "20", mode)
		err := p.wait(30 * time.Second)
		m := ftplibFetch.FindStringSubmatch(p.output())
		if err != nil || m == nil || m[1] != "20" || m[2] != strconv.Itoa(len(ftpSmallBody)) {
			t.Errorf("ftplib %s: %v\n%s", mode, err, tail(p.output(), 10))
			continue
		}
		each, _ := strconv.ParseFloat(m[3], 64)
		t.Logf("ftplib %s: %.1f ms a file", mode, each)
		if perFile := time.Duration(each * float64(time.Millisecond)); mode == "pasv" && perFile > maxPassiveFetch {
			t.Errorf("ftplib, passive: %v a file (over %v): its data connections wait", perFile, maxPassiveFetch)
		}
	}
}

// runVsftpdDebug: vsftpd with SLIM_DEBUG=1 serves as without. A session
// of vsftpd has the client's socket as fds 0, 1 and 2: the shim's lines
// went to the client, which read them as FTP replies.
func runVsftpdDebug(t *testing.T, l *testLab) {
	conf, _ := prepareFTP(t)
	server := l.containerAddr("h1-c1")
	ftpd := l.start("h1-c1", true, "env", "SLIM_DEBUG=1", "vsftpd", conf)
	l.waitForDirectory("h2", server, 21, 10*time.Second)
	out, err := l.curl("h2-c1", true, "ftp://"+server+"/small.txt")
	wantOutput(t, "curl from vsftpd with SLIM_DEBUG=1", out, err, ftpSmallBody)
	p := l.start("h2-c1", true, "/usr/bin/python3", testdataPath("ftpfetch.py"), server, "small.txt", "3", "pasv")
	err = p.wait(30 * time.Second)
	wantOutput(t, "ftplib from vsftpd with SLIM_DEBUG=1", p.output(), err, "fetched 3 files")
	l.stopService(ftpd, "h1-c1", 21, false)
	if !strings.Contains(ftpd.output(), "slim: host listener fd") {
		t.Errorf("vsftpd's own process said nothing with SLIM_DEBUG=1:\n%s", tail(ftpd.output(), 10))
	}
}
