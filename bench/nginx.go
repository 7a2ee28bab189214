package bench

import (
	"fmt"
	"path/filepath"
	"strings"
)

// nginxPage is the static page wrk fetches, and its size.
const (
	nginxPage     = "1k.html"
	nginxPageSize = 1024
)

// nginxConfig is a configuration for one nginx worker serving dir on
// port, with every file it writes (pid, logs, temporary files) in dir,
// and any extra directives in its http block. It listens as Debian's
// default site does: `listen PORT` (0.0.0.0, IPv4) and `listen [::]:PORT`
// (nginx makes that one IPV6_V6ONLY, its default), no address named.
func nginxConfig(dir string, port int, httpExtra ...string) string {
	in := func(name string) string { return filepath.Join(dir, name) }
	lines := []string{
		"daemon off;",
		"worker_processes 1;",
		"pid " + in("nginx.pid") + ";",
		"error_log " + in("error.log") + " warn;",
		"events { worker_connections 1024; }",
		"http {",
		"    access_log off;",
	}
	for _, directive := range httpExtra {
		lines = append(lines, "    "+directive)
	}
	lines = append(lines, []string{
		"    client_body_temp_path " + in("client_body_temp") + ";",
		"    proxy_temp_path " + in("proxy_temp") + ";",
		"    fastcgi_temp_path " + in("fastcgi_temp") + ";",
		"    uwsgi_temp_path " + in("uwsgi_temp") + ";",
		"    scgi_temp_path " + in("scgi_temp") + ";",
		"    server {",
		fmt.Sprintf("        listen %d;", port),
		fmt.Sprintf("        listen [::]:%d;", port),
		"        root " + dir + ";",
		"    }",
		"}",
	}...)
	return strings.Join(lines, "\n") + "\n"
}

// nginxPageContent is the body of the static page.
func nginxPageContent() []byte {
	page := []byte(strings.Repeat("slim bench page\n", nginxPageSize/16))
	return page[:nginxPageSize]
}
