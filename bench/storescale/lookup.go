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
	Probes   float64       `json:"probes"`    // mean slots read per hit
	V1Probes float64       `json:"v1_probes"` // the same with version 1's hash
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
	row := LookupRow{Entries: len(entries), Slots: directory.CapacityFor(len(entries))}
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
	row.V1Probes = meanProbes(entries, row.Slots, versionOneSlot)
	return row, nil
}

// tableSlot is the first slot the table (and the shim) probe for a key
// (router/directory/layout.go, preload/directory.c).
func tableSlot(ip [4]byte, port uint16, slots int) int {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], port)
	return int(directory.Hash(binary.LittleEndian.Uint32(ip[:]), uint32(binary.LittleEndian.Uint16(p[:]))) & uint32(slots-1))
}

// versionOneSlot is the slot version 1 of the table started at: a product
// whose low bits leave out the last bytes of the address, for comparison.
func versionOneSlot(ip [4]byte, port uint16, slots int) int {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], port)
	h := binary.LittleEndian.Uint32(ip[:])*2654435761 + uint32(binary.LittleEndian.Uint16(p[:]))*40503
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
