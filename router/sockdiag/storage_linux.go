package sockdiag

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// Netlink attributes of BPF socket storage in sock_diag (linux/inet_diag.h,
// linux/sock_diag.h).
const (
	inetDiagReqSkBPFStorages = 2  // INET_DIAG_REQ_SK_BPF_STORAGES
	inetDiagSkBPFStorages    = 20 // INET_DIAG_SK_BPF_STORAGES
	skDiagStorageReqMapFD    = 1  // SK_DIAG_BPF_STORAGE_REQ_MAP_FD
	skDiagStorage            = 1  // SK_DIAG_BPF_STORAGE
	skDiagStorageMapValue    = 3  // SK_DIAG_BPF_STORAGE_MAP_VALUE
)

// withStorageRequest appends to a dump request the map whose values the
// kernel should add to each socket.
func withStorageRequest(req []byte, mapFD int) []byte {
	le := binary.LittleEndian
	inner := make([]byte, 8)
	le.PutUint16(inner[0:], 8)
	le.PutUint16(inner[2:], skDiagStorageReqMapFD)
	le.PutUint32(inner[4:], uint32(mapFD))
	outer := make([]byte, 4, 12)
	le.PutUint16(outer[0:], uint16(4+len(inner)))
	le.PutUint16(outer[2:], inetDiagReqSkBPFStorages|unix.NLA_F_NESTED)
	outer = append(outer, inner...)
	req = append(req, outer...)
	le.PutUint32(req[0:], uint32(len(req)))
	return req
}

// storageValue finds the map value in INET_DIAG_SK_BPF_STORAGES (one map
// was asked for, so the first value is its).
func storageValue(b []byte) []byte {
	for _, storage := range attributes(b) {
		if storage.kind != skDiagStorage {
			continue
		}
		for _, field := range attributes(storage.data) {
			if field.kind == skDiagStorageMapValue {
				return append([]byte(nil), field.data...)
			}
		}
	}
	return nil
}

type attribute struct {
	kind uint16
	data []byte
}

// attributes splits netlink attributes, ignoring a malformed tail.
func attributes(b []byte) []attribute {
	le := binary.LittleEndian
	var out []attribute
	for len(b) >= 4 {
		size := int(le.Uint16(b))
		if size < 4 || size > len(b) {
			break
		}
		out = append(out, attribute{kind: le.Uint16(b[2:]) &^ unix.NLA_F_NESTED, data: b[4:size]})
		aligned := (size + 3) &^ 3
		if aligned > len(b) {
			break
		}
		b = b[aligned:]
	}
	return out
}
