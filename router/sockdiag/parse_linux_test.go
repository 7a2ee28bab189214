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
	b[0] = unix.AF_UNIX
	if _, ok := parseSocket(b); ok {
		t.Error("AF_UNIX message parsed")
	}
	b[0] = unix.AF_INET
	b = append(b, 0xff, 0xff, 2, 0) // an attribute claiming 65535 bytes
	if _, ok := parseSocket(b); !ok {
		t.Error("a bad attribute must not drop the socket")
	}
}

func TestParseSocketUnmapsIPv6(t *testing.T) {
	b := make([]byte, msgSize)
	b[0] = unix.AF_INET6
	b[1] = Listen
	b[4], b[5] = 0x1f, 0x90 // port 8080
	copy(b[8:], []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 1})
	s, ok := parseSocket(b)
	if !ok || s.Family != unix.AF_INET6 || s.Local.String() != "198.18.0.1:8080" {
		t.Errorf("parseSocket = %+v, %v; want an AF_INET6 socket on 198.18.0.1:8080", s, ok)
	}
	req := destroyRequest(s)
	id := req[unix.NLMSG_HDRLEN+8:]
	if req[unix.NLMSG_HDRLEN] != unix.AF_INET6 || id[14] != 0xff || id[15] != 0xff || id[16] != 198 {
		t.Errorf("SOCK_DESTROY request of an AF_INET6 socket: % x", req)
	}
}
