package bench

import (
	"strings"
	"testing"
)

func TestNginxConfig(t *testing.T) {
	config := nginxConfig("/tmp/slim-bench-1", 8080)
	for _, want := range []string{
		"daemon off;",
		"worker_processes 1;",
		"pid /tmp/slim-bench-1/nginx.pid;",
		"error_log /tmp/slim-bench-1/error.log warn;",
		"access_log off;",
		"client_body_temp_path /tmp/slim-bench-1/client_body_temp;",
		"proxy_temp_path /tmp/slim-bench-1/proxy_temp;",
		"fastcgi_temp_path /tmp/slim-bench-1/fastcgi_temp;",
		"uwsgi_temp_path /tmp/slim-bench-1/uwsgi_temp;",
		"scgi_temp_path /tmp/slim-bench-1/scgi_temp;",
		"listen 8080;",
		"listen [::]:8080;",
		"root /tmp/slim-bench-1;",
	} {
		if !strings.Contains(config, want) {
			t.Errorf("configuration lacks %q:\n%s", want, config)
		}
	}
	if strings.Count(config, "{") != strings.Count(config, "}") {
		t.Errorf("unbalanced braces:\n%s", config)
	}
	if got := len(nginxPageContent()); got != nginxPageSize {
		t.Errorf("page is %d bytes, want %d", got, nginxPageSize)
	}
}
