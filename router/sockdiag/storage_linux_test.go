package sockdiag

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// attr encodes one netlink attribute, padded to 4 bytes.
func attr(kind uint16, data []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, uint16(4+len(data)))
	b = binary.LittleEndian.AppendUint16(b, kind)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestStorageValueFindsTheMapValue(t *testing.T) {
	value := []byte{2, 0, 0, 0, 198, 19, 1, 2}
	storage := attr(skDiagStorage|unix.NLA_F_NESTED, append(attr(2, []byte{7, 0, 0, 0}), attr(skDiagStorageMapValue, value)...))
	if got := storageValue(storage); !bytes.Equal(got, value) {
		t.Errorf("storageValue = %v, want %v", got, value)
	}
	if got := storageValue(storage[:len(storage)-3]); got != nil {
		t.Errorf("a truncated attribute gave %v, want nothing", got)
	}
}

func TestWithStorageRequestNamesTheMap(t *testing.T) {
	req := withStorageRequest(request(Live, unix.AF_INET), 9)
	if n := binary.LittleEndian.Uint32(req); int(n) != len(req) {
		t.Errorf("header length %d, message %d bytes", n, len(req))
	}
	tail := attributes(req[unix.NLMSG_HDRLEN+reqSize:])
	if len(tail) != 1 || tail[0].kind != inetDiagReqSkBPFStorages {
		t.Fatalf("attributes %+v, want one INET_DIAG_REQ_SK_BPF_STORAGES", tail)
	}
	inner := attributes(tail[0].data)
	if len(inner) != 1 || inner[0].kind != skDiagStorageReqMapFD || binary.LittleEndian.Uint32(inner[0].data) != 9 {
		t.Errorf("inner %+v, want map fd 9", inner)
	}
}
