package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadMessages: a policy file with a field this router does not know
// or a rule that is not valid is refused, naming the file, the rule and
// the field: a rule half understood (a misspelt "to" dropped, say, which
// turns "deny to X" into deny-all) is never enforced.
func TestLoadMessages(t *testing.T) {
	tests := []struct {
		name, rules, want string
	}{
		{"misspelt field", `{"action": "deny", "too": "198.19.1.0/24"}`, `rule 1: unknown field "too"`},
		{"second rule", `{"action": "allow"}, {"action": "deny", "port": 22}`, `rule 2: unknown field "port"`},
		{"action", `{"action": "alow"}`, `rule 1: action "alow": want "allow" or "deny"`},
		{"no action", `{"to": "198.19.1.0/24"}`, `rule 1: action "": want "allow" or "deny"`},
		{"two sources", `{"action": "deny", "from_container": "web", "from_cidr": "198.19.2.0/24"}`, `rule 1: from_container "web" and from_cidr "198.19.2.0/24": a rule has one source`},
		{"container name with a space", `{"action": "deny", "from_container": "my web"}`, `rule 1: from_container "my web": a container name has no spaces`},
		{"from_cidr", `{"action": "deny", "from_cidr": "banana"}`, `rule 1: from_cidr: "banana" is not an IPv4 address or CIDR`},
		{"from_cidr host bits", `{"action": "deny", "from_cidr": "198.19.2.7/24"}`, `rule 1: from_cidr: "198.19.2.7/24" has host bits set; did you mean 198.19.2.0/24?`},
		{"to", `{"action": "deny", "to": "2001:2::/48"}`, `rule 1: to: "2001:2::/48": only IPv4`},
		{"to type", `{"action": "deny", "to": 5}`, `rule 1: field "to" is a number, want a string`},
		{"port_min alone", `{"action": "deny", "port_min": 80}`, "rule 1: port_min 80 without port_max"},
		{"port_max alone", `{"action": "deny", "port_max": 80}`, "rule 1: port_min 0 with port_max 80: ports start at 1"},
		{"ports reversed", `{"action": "deny", "port_min": 90, "port_max": 80}`, "rule 1: port_min 90 is above port_max 80"},
		{"negative port", `{"action": "deny", "port_min": -1, "port_max": 80}`, `rule 1: field "port_min": -1 is out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writePolicy(t, `{"version": 1, "rules": [`+tt.rules+`]}`)
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Load: %v\nwant an error naming %s and saying %q", err, path, tt.want)
			}
		})
	}
	for name, text := range map[string]string{
		"unknown top-level field": `{"version": 1, "rules": [], "defaults": "deny"}`,
		"trailing data":           `{"version": 1, "rules": []} {"version": 1}`,
	} {
		if _, err := Load(writePolicy(t, text)); err == nil || !strings.Contains(err.Error(), "is corrupt") {
			t.Errorf("%s: Load = %v, want the file refused as corrupt", name, err)
		}
	}
}

// TestLoadReadsWhatSaveWrote: every form of rule survives a save and a
// load unchanged.
func TestLoadReadsWhatSaveWrote(t *testing.T) {
	s := &Set{}
	for _, text := range []string{
		"allow", "deny from 198.19.2.0/24 to 198.19.1.0/24 port 5432",
		"allow from container h2-c1 to 198.19.1.2/32 port 8000-8100", "deny to 198.19.3.0/24",
	} {
		s.Add(mustParse(t, text), -1)
	}
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := texts(loaded), texts(s); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("loaded %q, saved %q", got, want)
	}
}

func writePolicy(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEncodeDecode: a cluster store keeps the policy as Encode writes it;
// Decode reads it back rule for rule, reads nothing as no rules, and
// refuses what Load refuses, naming the rule.
func TestEncodeDecode(t *testing.T) {
	s := &Set{}
	for _, text := range []string{"deny from container web to 198.19.1.0/24 port 80-90", "allow from 198.19.2.0/24"} {
		s.Add(mustParse(t, text), -1)
	}
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !decoded.Equal(s) {
		t.Errorf("decoded %q, encoded %q", texts(decoded), texts(s))
	}
	if empty, err := Decode(nil); err != nil || empty.Len() != 0 {
		t.Errorf("Decode(nil) = %v rules, %v; want an empty policy", empty.Len(), err)
	}
	if data, _ := (&Set{}).Encode(); !strings.Contains(string(data), `"rules": []`) {
		t.Errorf("an empty policy encodes as %s, want an empty list of rules", data)
	}
	if decoded.Delete(0); decoded.Equal(s) {
		t.Error("sets of different rules are Equal")
	}
	_, err = Decode([]byte(`{"version": 1, "rules": [{"action": "allow"}, {"action": "deny", "too": "198.19.1.0/24"}]}`))
	if err == nil || !strings.Contains(err.Error(), `rule 2: unknown field "too"`) {
		t.Errorf("Decode of a misspelt field: %v", err)
	}
}
