package e2e

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/secure"
)

// TestIntegrationSecureSynMACIsSipHash captures an accelerated SYN on the
// server's host and checks its option against secure.SynMAC, the Go
// SipHash-2-4 tested on the reference vector: the kernel program computes
// the MAC the documentation describes, under the key derived from the
// lab's cluster key, and names the client's overlay address.
func TestIntegrationSecureSynMACIsSipHash(t *testing.T) {
	l := newSecureLab(t, "smac")
	const port = 7403
	startHoldServer(l, "h2-c1", "h1", port)
	syns := captureSYNs(t, l, "h2")
	client := startHoldClient(l, "h1-c1", "h2-c1", port)
	client.waitFor("CONNECTED", 10*time.Second)

	key, err := secure.LoadClusterKey(l.ClusterKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	k0, k1 := key.SynKey()
	select {
	case syn := <-syns:
		if got, want := syn.overlay(), netip.MustParseAddr(l.containerAddr("h1-c1")); got != want {
			t.Errorf("the SYN names %v, want the client's overlay address %v", got, want)
		}
		if got, want := syn.mac(), syn.expectedMAC(k0, k1); got != want {
			t.Errorf("the SYN's MAC is %#x, SipHash-2-4 of its addresses is %#x", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no SYN with Slim's option seen on h2")
	}
}

// synPacket is an IPv4 TCP SYN that carries Slim's option.
type synPacket struct {
	ip, tcp, option []byte
}

func (s synPacket) overlay() netip.Addr { return netip.AddrFrom4([4]byte(s.option[4:8])) }
func (s synPacket) mac() uint64         { return binary.LittleEndian.Uint64(s.option[8:16]) }

// expectedMAC reads the fields as the programs do: raw network-order bytes
// as little-endian integers.
func (s synPacket) expectedMAC(k0, k1 uint64) uint64 {
	le := binary.LittleEndian
	return secure.SynMAC(k0, k1, le.Uint32(s.ip[12:]), le.Uint32(s.ip[16:]),
		le.Uint16(s.tcp[0:]), le.Uint16(s.tcp[2:]), le.Uint32(s.option[4:]))
}

// captureSYNs reads the IPv4 packets a lab host receives and sends the
// first SYN with Slim's option (kind 254, experiment "SL").
func captureSYNs(t *testing.T, l *testLab, host string) <-chan synPacket {
	t.Helper()
	n, err := l.Node(host)
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	err = n.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	out := make(chan synPacket, 1)
	go func() {
		buf := make([]byte, 65536)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			k, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue
			}
			if syn, ok := parseSlimSYN(append([]byte(nil), buf[:k]...)); ok {
				out <- syn
				return
			}
		}
	}()
	return out
}

func parseSlimSYN(p []byte) (synPacket, bool) {
	if len(p) < 20 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_TCP {
		return synPacket{}, false
	}
	ip, tcp := p[:int(p[0]&0xf)*4], p[int(p[0]&0xf)*4:]
	if len(tcp) < 20 || tcp[13]&0x12 != 0x02 { // SYN, not SYN-ACK
		return synPacket{}, false
	}
	opts := tcp[20:min(int(tcp[12]>>4)*4, len(tcp))]
	for len(opts) >= 2 {
		switch kind := opts[0]; {
		case kind == 0:
			return synPacket{}, false
		case kind == 1:
			opts = opts[1:]
			continue
		}
		size := int(opts[1])
		if size < 2 || size > len(opts) {
			return synPacket{}, false
		}
		if opts[0] == 254 && size == 16 && opts[2] == 'S' && opts[3] == 'L' {
			return synPacket{ip: ip, tcp: tcp, option: opts[:16]}, true
		}
		opts = opts[size:]
	}
	return synPacket{}, false
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
