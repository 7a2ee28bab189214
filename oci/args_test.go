package oci

import "testing"

func TestParseInvocation(t *testing.T) {
	tests := []struct {
		args            []string
		command, bundle string
		global          int
		last            string
	}{
		{[]string{"--root", "/run/runc", "--log", "/x.json", "--log-format=json", "create", "--bundle", "/b", "--pid-file", "/p", "abc"}, "create", "/b", 5, "abc"},
		{[]string{"--systemd-cgroup", "create", "-b=/b2", "id"}, "create", "/b2", 1, "id"},
		{[]string{"run", "-bundle", "/b3", "--detach", "id"}, "run", "/b3", 0, "id"},
		{[]string{"--debug", "exec", "--process", "/proc.json", "--detach", "id"}, "exec", "", 1, "id"},
		{[]string{"--version"}, "", "", 1, ""},
		{[]string{"--root"}, "", "", 1, ""},
	}
	for _, tt := range tests {
		inv := parseInvocation(tt.args)
		bundle, _ := inv.flag("bundle", "b")
		if inv.command != tt.command || bundle != tt.bundle || len(inv.global()) != tt.global || inv.lastArg() != tt.last {
			t.Errorf("%q: command %q bundle %q global %q last %q; want %q %q %d %q", tt.args, inv.command, bundle, inv.global(), inv.lastArg(), tt.command, tt.bundle, tt.global, tt.last)
		}
	}
	inv := parseInvocation([]string{"exec", "--process", "/proc.json", "id"})
	if p, ok := inv.flag("process", "p"); !ok || p != "/proc.json" {
		t.Errorf("exec --process: %q %v", p, ok)
	}
}
