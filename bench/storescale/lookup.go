package storescale

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/slimnet/slim/router/directory"
)

// lookupsPerSize is how many lookups are timed per table size.
const lookupsPerSize = 20000

// LookupRow is the directory table's cost at one size.
type LookupRow struct {
	Entries  int           `json:"entries"`
	Slots    int           `json:"slots"`
	Publish  time.Duration `json:"publish"`   // rewriting the table (a router does on every change)
	Hit      time.Duration `json:"hit"`       // mean lookup of a listed listener
	Miss     time.Duration `json:"miss"`      // mean lookup of an unlisted port
	Probes   float64       `json:"probes"`    // mean slots read per hit, the table's hash
	MixProbe float64       `json:"mix_probe"` // the same with a hash that mixes every bit
}

// lookupTable times directory.Lookup, which reads a table the way the
// shim does (same hash, same linear probing), at growing sizes taken
// from entries (the first hosts' listeners: a smaller cluster).
func lookupTable(entries []directory.Entry, dir string, overlay netip.Prefix) ([]LookupRow, error) {
	var rows []LookupRow
	for _, n := range []int{1000, 10000, 100000, len(entries)} {
		if n > len(entries) || (len(rows) > 0 && float64(n) < 1.1*float64(rows[len(rows)-1].Entries)) {
			continue // a size no different from the last
		}
		row, err := lookupAt(entries[:n], filepath.Join(dir, "lookup-directory"), overlay)
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func lookupAt(entries []directory.Entry, path string, overlay netip.Prefix) (LookupRow, error) {
	row := LookupRow{Entries: len(entries), Slots: capacityFor(len(entries))}
	os.Remove(path)
	table, err := directory.Open(path, row.Slots, overlay)
	if err != nil {
		return row, err
	}
	defer os.Remove(path)
	defer table.Close()
	start := time.Now()
	if err := table.Publish(entries); err != nil {
		return row, err
	}
	row.Publish = time.Since(start)
	mem := table.Snapshot()
	rng := rand.New(rand.NewPCG(1, 2))
	start = time.Now()
	for range lookupsPerSize {
		directory.Lookup(mem, entries[rng.IntN(len(entries))].Overlay)
	}
	row.Hit = time.Since(start) / lookupsPerSize
	start = time.Now()
	for range lookupsPerSize {
		e := entries[rng.IntN(len(entries))].Overlay
		directory.Lookup(mem, netip.AddrPortFrom(e.Addr(), 1))
	}
	row.Miss = time.Since(start) / lookupsPerSize
	row.Probes = meanProbes(entries, row.Slots, tableSlot)
	row.MixProbe = meanProbes(entries, row.Slots, mixedSlot)
	return row, nil
}

// tableSlot is the first slot the table (and the shim) probe for a key:
// the raw network-order bytes read as little-endian integers, multiplied,
// masked to the low bits (router/directory/layout.go, preload/directory.c).
func tableSlot(ip [4]byte, port uint16, slots int) int {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], port)
	h := binary.LittleEndian.Uint32(ip[:])*2654435761 + uint32(binary.LittleEndian.Uint16(p[:]))*40503
	return int(h & uint32(slots-1))
}

// mixedSlot is a slot from a hash whose every output bit depends on
// every input bit (a 32-bit finalizer), for comparison.
func mixedSlot(ip [4]byte, port uint16, slots int) int {
	h := binary.BigEndian.Uint32(ip[:]) ^ uint32(port)*0x9e3779b9
	h ^= h >> 16
	h *= 0x7feb352d
	h ^= h >> 15
	h *= 0x846ca68b
	h ^= h >> 16
	return int(h & uint32(slots-1))
}

// meanProbes lays entries out with linear probing under slot and returns
// the mean number of slots a lookup of each reads.
func meanProbes(entries []directory.Entry, slots int, slot func([4]byte, uint16, int) int) float64 {
	used := make([]bool, slots)
	total := 0
	for _, e := range entries {
		i, n := slot(e.Overlay.Addr().As4(), e.Overlay.Port(), slots), 1
		for used[i] {
			i, n = (i+1)%slots, n+1
		}
		used[i] = true
		total += n
	}
	return float64(total) / float64(len(entries))
}
