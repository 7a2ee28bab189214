package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// moreApps are servers users commonly run that the applications tests
// run too, each with its defaults: no bind address, so each listens on
// whatever its default form is (Node: one dual-stack socket on ::;
// asyncio, MariaDB and sshd: 0.0.0.0 and :: with IPV6_V6ONLY; HAProxy
// `bind :PORT` and socat TCP-LISTEN: 0.0.0.0).
var moreApps = []app{
	{
		name:  "node",
		port:  8081,
		tools: []string{"node", "curl", "wrk"},
		server: func(dir, addr string) []string {
			return []string{"node", "-e", `require("http").createServer((req, res) => res.end("hello from node\n")).listen(8081)`}
		},
		ready:   "port:8081",
		clients: func(dir, addr string) [][]string { return curlAndWrk("http://" + addr + ":8081/") },
		check:   func(out string) error { return httpChecks(out, "hello from node") },
	},
	{
		name:  "asyncio",
		port:  7001,
		tools: []string{"python3"},
		server: func(dir, addr string) []string {
			return []string{"python3", testdataPath("asyncecho.py"), "server", "7001"}
		},
		ready: "serving on",
		clients: func(dir, addr string) [][]string {
			return [][]string{{"python3", testdataPath("asyncecho.py"), "client", addr, "7001"}}
		},
		check: func(out string) error { return positive(out, `echoed ([0-9]+) lines`) },
	},
	{
		// A reverse proxy with a health-checked backend on another host:
		// both hops, client to HAProxy and HAProxy to nginx, must be
		// accelerated.
		name:    "haproxy",
		port:    8082,
		tools:   []string{"haproxy", "nginx", "curl", "wrk"},
		backend: &backend{node: "h2-c2", port: 8080, prepare: func(t *testing.T, dir string) { writeNginxConfig(t, dir, "8080") }, argv: nginxArgv},
		prepare: writeHAProxyConfig,
		server: func(dir, addr string) []string {
			return []string{"haproxy", "-f", filepath.Join(dir, "haproxy.cfg")}
		},
		ready:   "port:8082",
		clients: func(dir, addr string) [][]string { return curlAndWrk("http://" + addr + ":8082/1k.html") },
		check:   func(out string) error { return httpChecks(out, "xxxxxxxxxxxxxxxx") },
	},
	{
		name:    "mariadb",
		port:    3306,
		tools:   []string{"mariadbd", "mariadb-install-db", "mariadb-slap"},
		prepare: prepareMariaDB,
		server: func(dir, addr string) []string {
			// --no-defaults: the compiled-in defaults (Debian's my.cnf binds
			// 127.0.0.1), so it listens on 0.0.0.0 and :: as in the Docker
			// image; --skip-name-resolve as that image sets it.
			return []string{"mariadbd", "--no-defaults", "--user=mysql", "--datadir=" + filepath.Join(dir, "data"),
				"--socket=" + filepath.Join(dir, "mysqld.sock"), "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
				"--skip-name-resolve", "--init-file=" + filepath.Join(dir, "init.sql")}
		},
		ready: "ready for connections",
		clients: func(dir, addr string) [][]string {
			return [][]string{{"mariadb-slap", "-h", addr, "-u", "slim", "--auto-generate-sql", "--concurrency=8", "--number-of-queries=2000", "--iterations=1"}}
		},
		check: func(out string) error { return positive(out, `Number of clients running queries: ([0-9]+)`) },
	},
	{
		name:    "sshd",
		port:    22,
		tools:   []string{"/usr/sbin/sshd", "ssh", "ssh-keygen", "sh"},
		prepare: prepareSSH,
		server: func(dir, addr string) []string {
			// The defaults but the files of this test (keys, pid) and
			// StrictModes, which refuses keys under /tmp.
			return []string{"/usr/sbin/sshd", "-D", "-e", "-h", filepath.Join(dir, "hostkey"),
				"-o", "AuthorizedKeysFile=" + filepath.Join(dir, "userkey.pub"), "-o", "StrictModes=no",
				"-o", "PidFile=" + filepath.Join(dir, "sshd.pid")}
		},
		ready: "Server listening on",
		clients: func(dir, addr string) [][]string {
			ssh := fmt.Sprintf("ssh -i %s -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@%s", filepath.Join(dir, "userkey"), addr)
			return [][]string{{"sh", "-c", ssh + " 'head -c 4194304 /dev/zero' | wc -c"}}
		},
		check: func(out string) error {
			if strings.TrimSpace(out) != "4194304" {
				return fmt.Errorf("ssh brought %q bytes, not 4194304", strings.TrimSpace(out))
			}
			return nil
		},
	},
	{
		name:  "socat",
		port:  7002,
		tools: []string{"socat", "sh"},
		server: func(dir, addr string) []string {
			return []string{"socat", "TCP-LISTEN:7002,fork,reuseaddr", "EXEC:cat"}
		},
		ready: "port:7002",
		clients: func(dir, addr string) [][]string {
			// 1 MiB through the echo; socat waits up to 5 s (-t) for the
			// echo's end after its input ends.
			pipeline := fmt.Sprintf("head -c 1048576 /dev/zero | socat -t 5 - TCP:%s:7002 | wc -c", addr)
			return [][]string{{"sh", "-c", pipeline}}
		},
		check: func(out string) error {
			if strings.TrimSpace(out) != "1048576" {
				return fmt.Errorf("the echo returned %q bytes, not 1048576", strings.TrimSpace(out))
			}
			return nil
		},
	},
}

// prepareMariaDB makes a data directory and an init file that lets the
// user slim in from any host without a password (as the Docker image's
// MARIADB_ALLOW_EMPTY_ROOT_PASSWORD does for root).
func prepareMariaDB(t *testing.T, dir, addr string) {
	data := filepath.Join(dir, "data")
	argv := []string{"mariadb-install-db", "--no-defaults", "--user=mysql", "--datadir=" + data, "--skip-test-db", "--auth-root-authentication-method=normal"}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	init := "CREATE USER IF NOT EXISTS 'slim'@'%';\nGRANT ALL ON *.* TO 'slim'@'%';\n"
	if err := os.WriteFile(filepath.Join(dir, "init.sql"), []byte(init), 0o644); err != nil {
		t.Fatal(err)
	}
}

// prepareSSH makes sshd's host key and a key the client logs in as root
// with, and the directory sshd's privilege separation needs (made by the
// package's service start, which make deps does not run).
func prepareSSH(t *testing.T, dir, addr string) {
	for _, key := range []string{"hostkey", "userkey"} {
		argv := []string{"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, key)}
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	if err := os.Mkdir("/run/sshd", 0o755); err == nil {
		t.Cleanup(func() { os.Remove("/run/sshd") })
	} else if !os.IsExist(err) {
		t.Fatal(err)
	}
}

// curlAndWrk is one curl request (retried while the listener is not yet
// up) and a short wrk load on url.
func curlAndWrk(url string) [][]string {
	return [][]string{
		{"curl", "-sS", "--retry", "20", "--retry-connrefused", "--retry-delay", "0", "--retry-max-time", "10", "-w", "curl %{http_code} %{remote_ip}\n", url},
		{"wrk", "-t2", "-c16", "-d1s", url},
	}
}

// httpChecks checks curl's body and status and wrk's figures.
func httpChecks(out, body string) error {
	if !strings.Contains(out, body) {
		return fmt.Errorf("curl did not get %q", body)
	}
	if !strings.Contains(out, "curl 200 198.19.1.2") {
		return fmt.Errorf("curl did not get 200 from 198.19.1.2")
	}
	if strings.Contains(out, "Socket errors") || strings.Contains(out, "Non-2xx") {
		return fmt.Errorf("wrk saw errors")
	}
	return positive(out, `Requests/sec:\s+([0-9.]+)`)
}

// writeHAProxyConfig writes a haproxy.cfg whose frontend binds as users
// write it (`bind :8082`, every IPv4 address) and passes every request to
// the nginx of h2-c2 (198.19.2.3:8080), health-checked.
func writeHAProxyConfig(t *testing.T, dir, addr string) {
	conf := `global
	maxconn 1024
defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend web
	bind :8082
	default_backend app
backend app
	server app1 198.19.2.3:8080 check
`
	if err := os.WriteFile(filepath.Join(dir, "haproxy.cfg"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}
