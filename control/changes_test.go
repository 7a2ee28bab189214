package control

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1700000000, 0).UTC()

// conn is a connection of h1-c1 first seen age seconds before t0.
func conn(cookie uint64, age int, bytes uint64) Connection {
	return Connection{
		Cookie: cookie, Container: "h1-c1", Role: RoleServer,
		Local: netip.MustParseAddrPort("198.19.1.2:5201"), PeerHost: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.2"), uint16(cookie)),
		Since: t0.Add(-time.Duration(age) * time.Second), BytesIn: bytes, RateIn: float64(bytes) / 10,
	}
}

// baseSnapshot is a router with a peer, two containers, a listener and
// three connections.
func baseSnapshot() Snapshot {
	return Snapshot{
		Time:       t0,
		Router:     RouterHealth{Version: "test", Host: netip.MustParseAddr("198.18.0.1"), Uptime: time.Hour},
		Peers:      []Peer{{Host: netip.MustParseAddr("198.18.0.2"), Connected: true, Listeners: 1}},
		Containers: []Container{{Name: "h1-c1", Connections: 3, Listeners: 1}, {Name: "h1-c2"}},
		Listeners:  []Listener{{Container: "h1-c1", Overlay: netip.MustParseAddrPort("198.19.1.2:5201")}},
		Connections: []Connection{
			conn(1, 30, 100), conn(2, 20, 200), conn(3, 10, 300),
		},
		Shims: ShimStats{Reports: 1, Fallbacks: map[string]uint64{"pool_empty": 1}, SetupBuckets: []uint64{0, 1}},
	}
}

// many is n connections from cookie first on, first seen at t0 + offset s
// and each a second later.
func many(n, first, offset int) []Connection {
	list := make([]Connection, n)
	for i := range list {
		list[i] = conn(uint64(first+i), -offset-i, uint64(i))
	}
	return list
}

// snapshotSteps is a watch's sequence of snapshots: each step changes the
// previous one.
var snapshotSteps = []struct {
	name          string
	change        func(s *Snapshot)
	sent, removed int // connections in the changes
}{
	{"first", func(s *Snapshot) {}, 0, 0},
	{"only time", func(s *Snapshot) {}, 0, 0},
	{"bytes and a new connection", func(s *Snapshot) {
		s.Connections[1].BytesIn += 5000
		s.Connections = append(s.Connections, conn(4, 1, 0))
	}, 2, 0},
	{"closed, peers gone, a rule", func(s *Snapshot) {
		s.Connections = s.Connections[1:]
		s.Peers = nil
		s.Policy = []PolicyRule{{Position: 1, Rule: "deny to 198.19.1.2/32", Action: "deny", Hits: 1}}
		s.Shims.Fallbacks = map[string]uint64{"pool_empty": 1, "other": 2}
	}, 0, 1},
	{"truncated: the 3 oldest and 2 more are left out", func(s *Snapshot) {
		s.Connections = append(s.Connections, many(MaxConnections+2, 1000, 0)...)
	}, MaxConnections, 3},
	{"truncated: newer ones push older out", func(s *Snapshot) {
		s.Connections = append(s.Connections, many(5, 100000, 2*MaxConnections)...)
	}, 5, 5},
	{"back under the bound", func(s *Snapshot) {
		s.Connections = s.Connections[:3]
		s.Containers[0].Connections = 3
		s.Listeners = []Listener{}
	}, 3, MaxConnections},
	{"all closed", func(s *Snapshot) {
		s.Connections = nil
		s.Containers = nil
	}, 0, 3},
}

// roundTrip is v as a client decodes it from JSON.
func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestControlChangesReproduceSnapshots: for a sequence of snapshots as
// the server sends them, applying each step's changes to the previous
// snapshot gives the next exactly, in memory and through JSON.
func TestControlChangesReproduceSnapshots(t *testing.T) {
	raw := baseSnapshot()
	var prev, applied, decoded Snapshot
	for i, step := range snapshotSteps {
		raw.Time = t0.Add(time.Duration(i) * time.Second)
		raw.Router.Uptime += time.Second
		step.change(&raw)
		next := raw
		next.normalize()
		if i == 0 {
			prev, applied, decoded = next, next, roundTrip(t, next)
			continue
		}
		changes := Diff(&prev, &next)
		if len(changes.Connections) != step.sent || len(changes.ConnectionsRemoved) != step.removed {
			t.Errorf("%s: changes carry %d connections and %d removals, want %d and %d",
				step.name, len(changes.Connections), len(changes.ConnectionsRemoved), step.sent, step.removed)
		}
		before := roundTrip(t, applied)
		applied.Apply(changes)
		if !reflect.DeepEqual(applied, next) {
			t.Fatalf("%s: applied changes give\n%+v\nwant\n%+v", step.name, applied, next)
		}
		decoded.Apply(roundTrip(t, changes))
		if want := roundTrip(t, next); !reflect.DeepEqual(decoded, want) {
			t.Fatalf("%s: applied JSON changes give\n%+v\nwant\n%+v", step.name, decoded, want)
		}
		if !reflect.DeepEqual(roundTrip(t, prev), before) {
			t.Fatalf("%s: Apply modified the lists of an earlier copy", step.name)
		}
		prev = next
	}
	if prev.ConnectionsTruncated != 0 || len(prev.Connections) != 0 || prev.Containers == nil {
		t.Errorf("last step: %+v", prev)
	}
}

// TestControlChangesAreSmall: changes carry what changed and nothing else.
func TestControlChangesAreSmall(t *testing.T) {
	prev := baseSnapshot()
	prev.normalize()
	same := prev
	same.Time = prev.Time.Add(time.Second)
	line, _ := json.Marshal(Diff(&prev, &same))
	for _, key := range []string{`"connections"`, `"connections_removed"`, `"peers"`, `"containers"`, `"listeners"`, `"policy"`} {
		if strings.Contains(string(line), key) {
			t.Errorf("changes of an unchanged snapshot have %s: %s", key, line)
		}
	}
	next := prev
	next.Connections = []Connection{prev.Connections[0], prev.Connections[2]}
	next.Connections[0].BytesIn++
	next.Peers = []Peer{}
	c := Diff(&prev, &next)
	if len(c.Connections) != 1 || c.Connections[0].Cookie != prev.Connections[0].Cookie || len(c.ConnectionsRemoved) != 1 || c.ConnectionsRemoved[0] != prev.Connections[1].Cookie {
		t.Errorf("one updated and one removed connection: %+v, removed %v", c.Connections, c.ConnectionsRemoved)
	}
	if line, _ := json.Marshal(c); !strings.Contains(string(line), `"peers":[]`) || strings.Contains(string(line), `"containers"`) {
		t.Errorf("a list that became empty is an empty array, an unchanged one absent: %s", line)
	}
}
