package sockdiag_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/slimnet/slim/internal/testenv"
	"github.com/slimnet/slim/lab"
	"github.com/slimnet/slim/router/sockdiag"
)

// TestIntegrationOneDumpHasBothFamilies: the single TCPDIAG_GETSOCK dump
// that TCP makes (one walk of the kernel's tables instead of one per
// family) works on this kernel and lists AF_INET sockets and AF_INET6 ones
// (v4-mapped, as IPv4) alike; TCP does not fall back to a dump per family.
func TestIntegrationOneDumpHasBothFamilies(t *testing.T) {
	testenv.Integration(t)
	name := fmt.Sprintf("ykd%d", os.Getpid()%100000)
	l, err := lab.Up(lab.Spec{Name: name, Hosts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Down(name)
	host, _ := l.Node("h1")
	err = host.Do(func() error {
		v4, err := net.Listen("tcp4", netip.AddrPortFrom(host.Addr, 0).String())
		if err != nil {
			return err
		}
		defer v4.Close()
		v6, err := net.Listen("tcp", "[::]:0") // dual-stack AF_INET6
		if err != nil {
			return err
		}
		defer v6.Close()
		port6 := v6.Addr().(*net.TCPAddr).Port
		c, err := net.Dial("tcp4", netip.AddrPortFrom(host.Addr, uint16(port6)).String())
		if err != nil {
			return err
		}
		defer c.Close()
		s, err := v6.Accept()
		if err != nil {
			return err
		}
		defer s.Close()

		sockets, err := sockdiag.OneDump(sockdiag.Live)
		if err != nil {
			return fmt.Errorf("the kernel refuses the one dump: %w", err)
		}
		want := map[string]bool{
			"v4 listener " + v4.Addr().String():                                    false,
			"v6 accepted " + netip.AddrPortFrom(host.Addr, uint16(port6)).String(): false,
			"v4 client " + c.LocalAddr().String():                                  false,
		}
		for _, so := range sockets {
			switch {
			case so.Family == 2 && so.State == sockdiag.Listen:
				want["v4 listener "+so.Local.String()] = true
			case so.Family == 10 && so.State == sockdiag.Established:
				want["v6 accepted "+so.Local.String()] = true
			case so.Family == 2 && so.State == sockdiag.Established:
				want["v4 client "+so.Local.String()] = true
			}
		}
		for k, seen := range want {
			if !seen {
				t.Errorf("one dump of %d sockets lacks the %s", len(sockets), k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
