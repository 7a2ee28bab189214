package etcd

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/slimnet/slim/cluster"
)

// keys is the key layout under a prefix (docs/cluster.md):
//
//	PREFIX network                 the overlay layout, written once
//	PREFIX policy                  the cluster's policy document
//	PREFIX subnets/A.B.C.D-BITS    a subnet claim, under the host's claim lease
//	PREFIX hosts/ID/member         a member record, under its member lease
//	PREFIX hosts/ID/listeners      its listeners, one key for all of them
type keys struct{ prefix string }

func (k keys) network() string { return k.prefix + "network" }
func (k keys) policy() string  { return k.prefix + "policy" }
func (k keys) subnets() string { return k.prefix + "subnets/" }
func (k keys) hosts() string   { return k.prefix + "hosts/" }
func (k keys) host(id string) string {
	return k.hosts() + id + "/"
}
func (k keys) member(id string) string    { return k.host(id) + "member" }
func (k keys) listeners(id string) string { return k.host(id) + "listeners" }

func (k keys) subnet(p netip.Prefix) string {
	return k.subnets() + p.Addr().String() + "-" + strconv.Itoa(p.Bits())
}

// kind of record a key holds.
type kind int

const (
	kindUnknown kind = iota
	kindNetwork
	kindPolicy
	kindClaim
	kindMember
	kindListeners
)

// parsed is what a key names.
type parsed struct {
	kind   kind
	id     string       // member, listeners
	subnet netip.Prefix // claim
}

// parse says what a key under the prefix is; keys it does not know (of a
// later version) are kindUnknown and ignored.
func (k keys) parse(key string) parsed {
	rest, ok := strings.CutPrefix(key, k.prefix)
	switch {
	case !ok:
		return parsed{}
	case rest == "network":
		return parsed{kind: kindNetwork}
	case rest == "policy":
		return parsed{kind: kindPolicy}
	}
	if s, ok := strings.CutPrefix(rest, "subnets/"); ok {
		p, err := parseSubnetKey(s)
		if err != nil {
			return parsed{}
		}
		return parsed{kind: kindClaim, subnet: p}
	}
	if s, ok := strings.CutPrefix(rest, "hosts/"); ok {
		id, record, ok := strings.Cut(s, "/")
		if !ok || cluster.CheckID(id) != nil {
			return parsed{}
		}
		switch record {
		case "member":
			return parsed{kind: kindMember, id: id}
		case "listeners":
			return parsed{kind: kindListeners, id: id}
		}
	}
	return parsed{}
}

func parseSubnetKey(s string) (netip.Prefix, error) {
	addr, bits, ok := strings.Cut(s, "-")
	if !ok {
		return netip.Prefix{}, fmt.Errorf("subnet key %q", s)
	}
	return netip.ParsePrefix(addr + "/" + bits)
}
