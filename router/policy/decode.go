package policy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/slimnet/slim/internal/strictjson"
)

// ruleFields is a Rule as saved, with its addresses still text, so that
// each mistake can be told by the name of its field.
type ruleFields struct {
	Action        string `json:"action"`
	FromContainer string `json:"from_container"`
	FromCIDR      string `json:"from_cidr"`
	To            string `json:"to"`
	PortMin       uint16 `json:"port_min"`
	PortMax       uint16 `json:"port_max"`
}

// decodeRule reads one saved rule, refusing fields it does not know and
// values that are not valid.
func decodeRule(raw json.RawMessage) (Rule, error) {
	var f ruleFields
	if err := strictjson.UnmarshalPart(raw, &f); err != nil {
		return Rule{}, err
	}
	return f.rule()
}

func (f ruleFields) rule() (Rule, error) {
	r := Rule{Action: Action(f.Action), FromContainer: f.FromContainer, PortMin: f.PortMin, PortMax: f.PortMax}
	if r.Action != Allow && r.Action != Deny {
		return Rule{}, fmt.Errorf(`action %q: want "allow" or "deny"`, f.Action)
	}
	if f.FromContainer != "" && f.FromCIDR != "" {
		return Rule{}, fmt.Errorf("from_container %q and from_cidr %q: a rule has one source, a container or a CIDR", f.FromContainer, f.FromCIDR)
	}
	if strings.ContainsAny(f.FromContainer, " \t\r\n") {
		return Rule{}, fmt.Errorf("from_container %q: a container name has no spaces", f.FromContainer)
	}
	var err error
	if f.FromCIDR != "" {
		if r.FromCIDR, err = parseCIDR(f.FromCIDR); err != nil {
			return Rule{}, fmt.Errorf("from_cidr: %w", err)
		}
	}
	if f.To != "" {
		if r.To, err = parseCIDR(f.To); err != nil {
			return Rule{}, fmt.Errorf("to: %w", err)
		}
	}
	return r, r.checkPorts()
}

// checkPorts checks the port range: 0..0 is any port, else 1 ≤ min ≤ max.
func (r Rule) checkPorts() error {
	switch {
	case r.PortMin == 0 && r.PortMax == 0:
		return nil
	case r.PortMin == 0:
		return fmt.Errorf("port_min 0 with port_max %d: ports start at 1 (give both 0, or neither, for any port)", r.PortMax)
	case r.PortMax == 0:
		return fmt.Errorf("port_min %d without port_max: give port_max (%d for that port alone)", r.PortMin, r.PortMin)
	case r.PortMin > r.PortMax:
		return fmt.Errorf("port_min %d is above port_max %d", r.PortMin, r.PortMax)
	}
	return nil
}
