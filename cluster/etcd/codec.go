package etcd

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/slimnet/slim/cluster"
)

// maxListenersValue bounds one host's listeners record, below etcd's
// default request limit (1.5 MiB): about 25,000 listeners.
const maxListenersValue = 1 << 20

// listenersValue is a host's listeners record: one pair of overlay and
// host address per listener, about 40 bytes each.
//
// With IPv6 overlay addresses (docs/overlay.md): IPv6 lists the indices in
// Listeners of those that take IPv6 clients too, and IPv6Only holds those
// that take IPv6 clients only, apart, so that routers from before them
// (which read Listeners alone) never send IPv4 clients there.
type listenersValue struct {
	Listeners [][2]netip.AddrPort `json:"listeners"`
	IPv6      []int               `json:"ipv6,omitempty"`
	IPv6Only  [][2]netip.AddrPort `json:"ipv6_only,omitempty"`
}

// Slot flags, as router/directory's.
const (
	flagIPv6   = 1
	flagNoIPv4 = 2
)

func encodeListeners(ls []cluster.Listener) ([]byte, error) {
	v := listenersValue{Listeners: make([][2]netip.AddrPort, 0, len(ls))}
	for _, l := range ls {
		pair := [2]netip.AddrPort{l.Overlay, l.Host}
		switch {
		case l.Flags&flagNoIPv4 != 0:
			v.IPv6Only = append(v.IPv6Only, pair)
		case l.Flags&flagIPv6 != 0:
			v.IPv6 = append(v.IPv6, len(v.Listeners))
			fallthrough
		default:
			v.Listeners = append(v.Listeners, pair)
		}
	}
	data, err := json.Marshal(v)
	if err == nil && len(data) > maxListenersValue {
		err = fmt.Errorf("%d listeners make a record of %d bytes, more than the %d etcd takes", len(ls), len(data), maxListenersValue)
	}
	return data, err
}

func decodeListeners(data []byte) ([]cluster.Listener, error) {
	var v listenersValue
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	ls := make([]cluster.Listener, 0, len(v.Listeners)+len(v.IPv6Only))
	for i, pair := range append(v.Listeners, v.IPv6Only...) {
		if !pair[0].IsValid() || !pair[1].IsValid() {
			return nil, fmt.Errorf("listener %d: want a pair of addresses such as [\"198.19.1.2:80\", \"198.18.0.1:40000\"]", i+1)
		}
		l := cluster.Listener{Overlay: pair[0], Host: pair[1]}
		if i >= len(v.Listeners) {
			l.Flags = flagIPv6 | flagNoIPv4
		}
		ls = append(ls, l)
	}
	for _, i := range v.IPv6 {
		if i < 0 || i >= len(v.Listeners) {
			return nil, fmt.Errorf("ipv6: listener index %d out of range", i)
		}
		ls[i].Flags = flagIPv6
	}
	return ls, nil
}

func encode(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // only types of this package, which always encode
	}
	return string(data)
}

func decodeMember(id string, data []byte) (cluster.Member, error) {
	var m cluster.Member
	if err := json.Unmarshal(data, &m); err != nil {
		return m, err
	}
	if m.ID != id {
		return m, fmt.Errorf("member record of %s names host %q", id, m.ID)
	}
	if !m.Underlay.Is4() || !m.Subnet.IsValid() {
		return m, fmt.Errorf("member record of %s: no underlay address or subnet", id)
	}
	return m, nil
}

func decodeClaim(subnet netip.Prefix, data []byte) (cluster.Claim, error) {
	var c cluster.Claim
	if err := json.Unmarshal(data, &c); err != nil {
		return c, err
	}
	if c.Subnet != subnet || cluster.CheckID(c.ID) != nil || !c.Underlay.Is4() {
		return c, fmt.Errorf("claim of %s: names subnet %s, host %q at %v", subnet, c.Subnet, c.ID, c.Underlay)
	}
	return c, nil
}

func decodeNetwork(data []byte) (cluster.Network, error) {
	var n cluster.Network
	if err := json.Unmarshal(data, &n); err != nil {
		return n, err
	}
	return n, n.Check()
}
