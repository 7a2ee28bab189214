package sockdiag_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/lab"
	"github.com/slimnet/slim/router/sockdiag"
)

// TestIntegrationTCPSeesLiveSockets lists a listener and an established
// pair with their byte counts, in a lab host's namespace.
func TestIntegrationTCPSeesLiveSockets(t *testing.T) {
	testenv.Integration(t)
	name := fmt.Sprintf("sd%d", os.Getpid()%100000)
	l, err := lab.Up(lab.Spec{Name: name, Hosts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Down(name)
	host, _ := l.Node("h1")
	if err := host.Do(func() error { checkLiveSockets(t, host.Addr); return nil }); err != nil {
		t.Fatal(err)
	}
}

func checkLiveSockets(t *testing.T, addr netip.Addr) {
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	defer server.Close()
	payload := make([]byte, 100000)
	go client.Write(payload)
	if _, err := io.ReadFull(server, payload); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the last ACK reach the sender

	sockets, err := sockdiag.TCP(sockdiag.Live)
	if err != nil {
		t.Fatal(err)
	}
	listenAddr := netip.MustParseAddrPort(ln.Addr().String())
	clientAddr := netip.MustParseAddrPort(client.LocalAddr().String())
	var sawListener, sawClient bool
	for _, s := range sockets {
		if s.Local == listenAddr && s.State == sockdiag.Listen {
			sawListener = true
		}
		if s.Local == clientAddr && s.State == sockdiag.Established {
			sawClient = true
			if s.BytesAcked < uint64(len(payload)) || s.Cookie == 0 {
				t.Errorf("client socket %+v: want %d bytes acked and a cookie", s, len(payload))
			}
			if want := cookieOf(t, client); s.Cookie != want {
				t.Errorf("cookie %d, SO_COOKIE says %d", s.Cookie, want)
			}
		}
		if s.State == sockdiag.TimeWait {
			t.Errorf("TIME_WAIT socket in a Live dump: %+v", s)
		}
	}
	if !sawListener || !sawClient {
		t.Errorf("dump of %d sockets lacks the listener (%v) or the client (%v)", len(sockets), sawListener, sawClient)
	}
}

func cookieOf(t *testing.T, c net.Conn) uint64 {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var cookie uint64
	raw.Control(func(fd uintptr) { cookie, _ = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE) })
	return cookie
}
