package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
)

// An application test serves with a real server under slim exec in h1-c1
// and loads it with its real client from h2-c1 (across hosts) and h1-c2
// (same host), both under slim exec, then once with a plain client (mixed
// mode). Accelerated runs must leave the VXLAN device of h1 flat.

// app describes one server and its client.
type app struct {
	name string
	port int // the port the server listens on
	// tools that must be installed (make deps installs them).
	tools []string
	// prepare readies files in dir before the server starts, if needed.
	prepare func(t *testing.T, dir, addr string)
	// server is the server's command line; ready is a line it prints
	// once it accepts connections, or "port:N" to wait until port N
	// accepts connections.
	server func(dir, addr string) []string
	ready  string
	// clients are run one after another; each must exit 0, and check
	// (if set) inspects their output.
	clients func(dir, addr string) [][]string
	check   func(output string) error
	// notSecure, if set, says why the secure test leaves the app out.
	notSecure string
	// backend, if set, is a server the app's server is a client of,
	// started first, under slim exec, in another node.
	backend *backend
}

// backend is a server an app's server connects to.
type backend struct {
	node    string
	port    int
	prepare func(t *testing.T, dir string)
	argv    func(dir string) []string
}

var apps = []app{
	{
		name:  "nginx",
		port:  8080,
		tools: []string{"nginx", "curl", "wrk"},
		prepare: func(t *testing.T, dir, addr string) {
			writeNginxConfig(t, dir, "8080")
		},
		server: func(dir, addr string) []string { return nginxArgv(dir) },
		ready:  "port:8080",
		clients: func(dir, addr string) [][]string {
			url := "http://" + addr + ":8080/1k.html"
			return [][]string{
				{"curl", "-sS", "--retry", "20", "--retry-connrefused", "--retry-delay", "0", "--retry-max-time", "10", "-o", "/dev/null", "-w", "curl %{http_code} %{remote_ip}\n", url},
				{"wrk", "-t2", "-c16", "-d2s", url},
			}
		},
		check: func(out string) error {
			if !strings.Contains(out, "curl 200 198.19.1.2") {
				return fmt.Errorf("curl did not get 200 from 198.19.1.2")
			}
			if strings.Contains(out, "Socket errors") || strings.Contains(out, "Non-2xx") {
				return fmt.Errorf("wrk saw errors")
			}
			return positive(out, `Requests/sec:\s+([0-9.]+)`)
		},
	},
	{
		name:  "memcached",
		port:  11211,
		tools: []string{"memcached", "memcaslap"},
		server: func(dir, addr string) []string {
			return []string{"memcached", "-u", "nobody", "-v"}
		},
		ready: "port:11211",
		clients: func(dir, addr string) [][]string {
			return [][]string{{"memcaslap", "-s", addr + ":11211", "-t", "2s", "-c", "16", "-T", "2"}}
		},
		check: func(out string) error { return positive(out, `TPS:\s+([0-9]+)`) },
	},
	{
		name:  "redis",
		port:  6379,
		tools: []string{"redis-server", "redis-benchmark"},
		server: func(dir, addr string) []string {
			// --protected-mode no: as in the Docker image (protected mode
			// refuses every client from another host when no password is set).
			return []string{"redis-server", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", dir}
		},
		ready: "Ready to accept connections",
		clients: func(dir, addr string) [][]string {
			return [][]string{{"redis-benchmark", "-h", addr, "-p", "6379", "-n", "20000", "-c", "16", "-t", "set,get", "-q"}}
		},
		check: func(out string) error { return positive(out, `GET: ([0-9.]+) requests per second`) },
	},
	{
		name:    "postgres",
		port:    5432,
		tools:   []string{pgBin("postgres"), pgBin("pgbench"), pgBin("initdb"), "setpriv"},
		prepare: preparePostgres,
		server: func(dir, addr string) []string {
			return asPostgres(pgBin("postgres"), "-D", filepath.Join(dir, "data"), "-k", dir, "-c", "listen_addresses=*", "-c", "fsync=off", "-c", "max_connections=50")
		},
		ready: "database system is ready to accept connections",
		clients: func(dir, addr string) [][]string {
			base := []string{"-h", addr, "-p", "5432", "-U", "postgres"}
			return [][]string{
				append(append([]string{pgBin("pgbench"), "-i", "-q"}, base...), "postgres"),
				// -C: a new connection, so a new server process, per transaction.
				append(append([]string{pgBin("pgbench"), "-C", "-c", "4", "-j", "2", "-T", "3"}, base...), "postgres"),
			}
		},
		check: func(out string) error { return positive(out, `tps = ([0-9.]+)`) },
	},
	{
		name:  "netperf",
		port:  12865,
		tools: []string{"netserver", "netperf"},
		server: func(dir, addr string) []string {
			return []string{"netserver", "-D"}
		},
		ready: "port:12865",
		clients: func(dir, addr string) [][]string {
			return [][]string{{"netperf", "-H", addr, "-p", "12865", "-l", "1", "-t", "TCP_RR"}}
		},
		// The last line of TCP_RR's table: ... Elapsed Trans/s
		check: func(out string) error { return positive(out, `(?m)^\d+\s+\d+\s+\d+\s+\d+\s+[0-9.]+\s+([0-9.]+)\s*$`) },
	},
	{
		name:  "python",
		port:  7000,
		tools: []string{"python3"},
		server: func(dir, addr string) []string {
			return []string{"python3", binPath("pyecho.py"), "server", "", "7000"}
		},
		ready: "listening on",
		clients: func(dir, addr string) [][]string {
			return [][]string{{"python3", binPath("pyecho.py"), "client", addr, "7000"}}
		},
		check: func(out string) error {
			if strings.Contains(out, "FAIL") {
				return fmt.Errorf("a check failed")
			}
			return nil
		},
	},
}

func TestIntegrationApplications(t *testing.T) {
	runApps(t, newLab(t, "app"), false)
}

// TestIntegrationSecureApplications runs the same applications with the
// routers in secure mode: the socket-option allowlist, the bind range, the
// enrolment checks and the ioctl guard must let them all work, accelerated,
// and no router may count a refusal while one runs.
func TestIntegrationSecureApplications(t *testing.T) {
	runApps(t, newSecureLab(t, "sapp"), true)
}

func runApps(t *testing.T, l *testLab, secure bool) {
	for _, a := range append(append([]app{}, apps...), moreApps...) {
		if secure && a.notSecure != "" {
			t.Logf("%s is left out in secure mode: %s", a.name, a.notSecure)
			continue
		}
		t.Run(a.name, func(t *testing.T) {
			l.t = t
			for _, tool := range a.tools {
				if _, err := exec.LookPath(tool); err != nil {
					t.Fatalf("%s is not installed (make deps installs it): %v", tool, err)
				}
			}
			if !secure {
				runApp(t, l, a)
				return
			}
			before := map[string]control.SecureEvents{"h1": secureEvents(t, l, "h1"), "h2": secureEvents(t, l, "h2")}
			runApp(t, l, a)
			for host, was := range before {
				now := secureEvents(t, l, host)
				for _, name := range []string{"sockopt_refused", "bind_refused", "connect_refused"} {
					if n := now[name] - was[name]; n != 0 {
						t.Errorf("router of %s: %s went up by %d: secure mode refused something %s does", host, name, n, a.name)
					}
				}
				t.Logf("router of %s: %v", host, now)
			}
		})
	}
}

func runApp(t *testing.T, l *testLab, a app) {
	dir := sharedTempDir(t)
	addr := l.containerAddr("h1-c1")
	if b := a.backend; b != nil {
		bdir := sharedTempDir(t)
		b.prepare(t, bdir)
		baddr := fmt.Sprintf("%s:%d", l.containerAddr(b.node), b.port)
		l.waitForPort(l.start(b.node, true, b.argv(bdir)...), "h1-c1", baddr, 20*time.Second)
		l.waitForDirectory("h1", l.containerAddr(b.node), b.port, 5*time.Second)
	}
	if a.prepare != nil {
		a.prepare(t, dir, addr)
	}
	server := l.start("h1-c1", true, a.server(dir, addr)...)
	if port, ok := strings.CutPrefix(a.ready, "port:"); ok {
		l.waitForPort(server, "h1-c2", addr+":"+port, 20*time.Second)
	} else {
		server.waitFor(a.ready, 20*time.Second)
	}
	t.Logf("%s listens on: %s", a.name, l.listeners("h1-c1", a.port))
	// The client's host must have learnt the listener, or its first
	// connections rightly go over the overlay.
	l.waitForDirectory("h2", addr, a.port, 5*time.Second)
	for _, c := range []struct {
		node        string
		accelerated bool
	}{{"h2-c1", true}, {"h1-c2", true}, {"h2-c1", false}} {
		before := l.vxlanBytes("h1")
		out := runClients(t, l, c.node, c.accelerated, a.clients(dir, addr))
		crossed := l.vxlanBytes("h1") - before
		label := fmt.Sprintf("%s client in %s (accelerated %v)", a.name, c.node, c.accelerated)
		if err := a.check(out); err != nil {
			t.Errorf("%s: %v\n%s\nserver:\n%s", label, err, out, server.output())
		}
		t.Logf("%s: %d bytes crossed the VXLAN device", label, crossed)
		if c.accelerated && crossed > 1<<20 {
			t.Errorf("%s: %d bytes crossed the VXLAN device; the connections were not accelerated", label, crossed)
		}
		if strings.Contains(out, "198.18.") {
			t.Errorf("%s: a host address reached the client:\n%s", label, out)
		}
	}
}

// listeners is what ss shows of node's TCP listeners on port: "*:P" is a
// dual-stack socket, "[::]:P" an IPV6_V6ONLY one, "0.0.0.0:P" IPv4.
func (l *testLab) listeners(node string, port int) string {
	l.t.Helper()
	p := l.start(node, false, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
	if err := p.wait(10 * time.Second); err != nil {
		l.t.Fatalf("ss: %v\n%s", err, p.output())
	}
	var local []string
	for _, line := range strings.Split(strings.TrimSpace(p.output()), "\n") {
		if f := strings.Fields(line); len(f) >= 4 {
			local = append(local, f[3])
		}
	}
	return strings.Join(local, " ")
}

func runClients(t *testing.T, l *testLab, node string, accelerated bool, clients [][]string) string {
	var all strings.Builder
	for _, argv := range clients {
		p := l.start(node, accelerated, argv...)
		err := p.wait(60 * time.Second)
		all.WriteString(p.output())
		if err != nil {
			t.Fatalf("%s in %s: %v\n%s", argv[0], node, err, p.output())
		}
	}
	return all.String()
}

// positive checks that a figure the pattern captures is above zero.
func positive(out, pattern string) error {
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("no %q in the output", pattern)
	}
	if v, err := strconv.ParseFloat(m[1], 64); err != nil || v <= 0 {
		return fmt.Errorf("%q gave %q", pattern, m[1])
	}
	return nil
}

// nginxArgv runs nginx with the configuration writeNginxConfig wrote in dir.
func nginxArgv(dir string) []string {
	return []string{"nginx", "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf")}
}

// writeNginxConfig writes an nginx.conf whose server listens as listen
// says ("8080": every IPv4 address, nginx's default form).
func writeNginxConfig(t *testing.T, dir, listen string) {
	page := strings.Repeat("x", 1023) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "1k.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 4;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server { listen %[2]s; root %[1]s; }
}
`, dir, listen)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sharedTempDir is a temporary directory that servers dropping root (nginx
// workers, memcached, PostgreSQL) can use.
func sharedTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "slim-e2e-app-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

func pgBin(name string) string { return "/usr/lib/postgresql/15/bin/" + name }

// asPostgres runs a command as the postgres user (PostgreSQL refuses root).
func asPostgres(argv ...string) []string {
	return append([]string{"setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"}, argv...)
}

func preparePostgres(t *testing.T, dir, addr string) {
	data := filepath.Join(dir, "data")
	argv := asPostgres(pgBin("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// Clients are trusted by their overlay address, which is what the
	// server sees whether the connection is accelerated or not.
	hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer hba.Close()
	if _, err := fmt.Fprintln(hba, "host all all 198.19.0.0/16 trust"); err != nil {
		t.Fatal(err)
	}
}
