package sockdiag

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSocketRejectsShortAndForeign(t *testing.T) {
	if _, ok := parseSocket(make([]byte, 10)); ok {
		t.Error("short message parsed")
	}
	b := make([]byte, msgSize)
	b[0] = unix.AF_INET6
	if _, ok := parseSocket(b); ok {
		t.Error("IPv6 message parsed")
	}
	b[0] = unix.AF_INET
	b = append(b, 0xff, 0xff, 2, 0) // an attribute claiming 65535 bytes
	if _, ok := parseSocket(b); !ok {
		t.Error("a bad attribute must not drop the socket")
	}
}
