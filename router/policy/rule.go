package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Action is what a rule does to the connections it matches.
type Action string

// Actions.
const (
	Allow Action = "allow"
	Deny  Action = "deny"
)

// Rule is one line of the policy.
type Rule struct {
	Action Action `json:"action"`
	// FromContainer or FromCIDR select the source; both empty match any.
	FromContainer string       `json:"from_container,omitempty"`
	FromCIDR      netip.Prefix `json:"from_cidr,omitzero"`
	// To selects the destination address; the zero Prefix matches any.
	To netip.Prefix `json:"to,omitzero"`
	// PortMin..PortMax select the destination port; 0..0 matches any.
	PortMin uint16 `json:"port_min,omitempty"`
	PortMax uint16 `json:"port_max,omitempty"`
}

// String writes the rule in the form Parse reads.
func (r Rule) String() string {
	parts := []string{string(r.Action)}
	switch {
	case r.FromContainer != "":
		parts = append(parts, "from", "container", r.FromContainer)
	case r.FromCIDR.IsValid():
		parts = append(parts, "from", r.FromCIDR.String())
	}
	if r.To.IsValid() {
		parts = append(parts, "to", r.To.String())
	}
	switch {
	case r.PortMax == 0:
	case r.PortMin == r.PortMax:
		parts = append(parts, "port", strconv.Itoa(int(r.PortMin)))
	default:
		parts = append(parts, "port", fmt.Sprintf("%d-%d", r.PortMin, r.PortMax))
	}
	return strings.Join(parts, " ")
}

// Parse reads a rule from words such as
// "deny from 198.19.2.0/24 to 198.19.1.0/24 port 5432".
func Parse(text string) (Rule, error) {
	words := strings.Fields(text)
	if len(words) == 0 {
		return Rule{}, fmt.Errorf("empty rule: want allow|deny [from CONTAINER|CIDR] [to CIDR] [port P[-Q]]")
	}
	r := Rule{Action: Action(strings.ToLower(words[0]))}
	if r.Action != Allow && r.Action != Deny {
		return Rule{}, fmt.Errorf("rule %q: starts with %q, want allow or deny", text, words[0])
	}
	seen := map[string]bool{}
	for rest := words[1:]; len(rest) > 0; {
		key := strings.ToLower(rest[0])
		if seen[key] {
			return Rule{}, fmt.Errorf("rule %q: %q given twice", text, key)
		}
		seen[key] = true
		var err error
		rest, err = r.parseClause(key, rest[1:])
		if err != nil {
			return Rule{}, fmt.Errorf("rule %q: %w", text, err)
		}
	}
	return r, nil
}

// parseClause reads the words after "from", "to" or "port".
func (r *Rule) parseClause(key string, rest []string) ([]string, error) {
	if len(rest) == 0 {
		return nil, fmt.Errorf("%q needs a value", key)
	}
	switch key {
	case "from":
		if strings.ToLower(rest[0]) == "container" {
			if len(rest) < 2 || rest[1] == "" {
				return nil, fmt.Errorf(`"from container" needs a container name`)
			}
			r.FromContainer = rest[1]
			return rest[2:], nil
		}
		p, err := parseCIDR(rest[0])
		r.FromCIDR = p
		return rest[1:], err
	case "to":
		p, err := parseCIDR(rest[0])
		r.To = p
		return rest[1:], err
	case "port":
		lo, hi, err := parsePorts(rest[0])
		r.PortMin, r.PortMax = lo, hi
		return rest[1:], err
	}
	return nil, fmt.Errorf("unknown word %q: want from, to or port", key)
}

func parseCIDR(text string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(text)
	if err != nil {
		if a, aerr := netip.ParseAddr(text); aerr == nil && a.Is4() {
			return netip.PrefixFrom(a, 32), nil
		}
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 address or CIDR", text)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q: only IPv4 is supported", text)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", text, p.Masked())
	}
	return p, nil
}

func parsePorts(text string) (uint16, uint16, error) {
	lo, hi, isRange := strings.Cut(text, "-")
	if !isRange {
		hi = lo
	}
	first, err1 := strconv.ParseUint(lo, 10, 16)
	last, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || first == 0 || last < first {
		return 0, 0, fmt.Errorf("port %q: want a port 1-65535 or a range such as 8000-8100", text)
	}
	return uint16(first), uint16(last), nil
}
