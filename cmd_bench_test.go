package main

import (
	"strings"
	"testing"
)

// Bad fixed-load options are refused before anything is set up, with a
// usage error that says what is wrong.
func TestBenchFixedLoadUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--load", "0.5"}, "--load needs --fixed-load"},
		{[]string{"--fixed-load", "--load", "2"}, "fraction of the overlay's peak"},
		{[]string{"--fixed-load", "--only", "tcp_rr"}, "unknown application \"tcp_rr\""},
		{[]string{"--only", "postgres"}, "unknown test \"postgres\""},
	} {
		code, _, stderr := runCapturingStdout(t, append([]string{"bench"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("slim bench %v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}
