package policy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func mustParse(t *testing.T, text string) Rule {
	t.Helper()
	r, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParseRoundTrip(t *testing.T) {
	for _, text := range []string{
		"allow",
		"deny from 198.19.2.0/24 to 198.19.1.0/24 port 5432",
		"allow from container h2-c1 to 198.19.1.2/32 port 8000-8100",
		"deny to 198.19.3.0/24",
		"deny from 198.19.2.7/32",
	} {
		if got := mustParse(t, text).String(); got != text {
			t.Errorf("Parse(%q).String() = %q", text, got)
		}
	}
	if got := mustParse(t, "DENY TO 198.19.1.2 PORT 80").String(); got != "deny to 198.19.1.2/32 port 80" {
		t.Errorf("case and bare addresses: %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	for text, want := range map[string]string{
		"":                                    "empty rule",
		"permit to 198.19.0.0/16":             `want allow or deny`,
		"deny to":                             `"to" needs a value`,
		"deny to 198.19.1.0":                  "", // a bare address is a /32: valid
		"deny to 198.19.1.3/24":               "did you mean 198.19.1.0/24",
		"deny to banana":                      "not an IPv4 address or CIDR",
		"deny to 2001:db8::/32":               "only IPv4",
		"deny port 0":                         "want a port 1-65535",
		"deny port 90-80":                     "want a port 1-65535",
		"deny port 70000":                     "want a port 1-65535",
		"deny from container":                 "needs a container name",
		"deny to 198.19.0.0/16 to 1.2.3.4/32": "given twice",
		"deny via eth0":                       "unknown word",
	} {
		_, err := Parse(text)
		if want == "" {
			if err != nil {
				t.Errorf("Parse(%q) = %v, want success", text, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", text, err, want)
		}
	}
}

func TestAddAtAndDelete(t *testing.T) {
	s := &Set{}
	s.Add(mustParse(t, "deny to 198.19.1.0/24"), -1)
	if at := s.Add(mustParse(t, "allow from container h2-c1"), 0); at != 0 {
		t.Fatalf("Add at 0 went to %d", at)
	}
	if at := s.Add(mustParse(t, "deny port 22"), 99); at != 2 {
		t.Fatalf("Add past the end went to %d, want 2 (appended)", at)
	}
	want := []string{"allow from container h2-c1", "deny to 198.19.1.0/24", "deny port 22"}
	if got := texts(s); !slices.Equal(got, want) {
		t.Errorf("rules %q, want %q", got, want)
	}
	if err := s.Delete(0); err != nil {
		t.Fatal(err)
	}
	if got := texts(s); !slices.Equal(got, want[1:]) {
		t.Errorf("after delete: %q, want %q", got, want[1:])
	}
	if err := s.Delete(5); err == nil || !strings.Contains(err.Error(), "has 2 rules") {
		t.Errorf("Delete(5) = %v", err)
	}
}

func texts(s *Set) []string {
	var out []string
	for _, l := range s.List() {
		out = append(out, l.Text)
	}
	return out
}

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.json")
	s := &Set{}
	s.Add(mustParse(t, "allow from container h2-c1 to 198.19.1.3/32 port 5432"), -1)
	s.Add(mustParse(t, "deny to 198.19.1.0/24"), -1)
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.List()) != 2 || loaded.List()[0].Text != s.List()[0].Text {
		t.Errorf("loaded %v, saved %v", loaded.List(), s.List())
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("policy file mode %v", info.Mode().Perm())
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".policy-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	if empty, err := Load(filepath.Join(t.TempDir(), "none.json")); err != nil || len(empty.List()) != 0 {
		t.Errorf("missing file: %v, %v", empty, err)
	}
	os.WriteFile(path, []byte(`{"version":1,"rules":[{"action":"maybe"}]}`), 0o600)
	if _, err := Load(path); err == nil {
		t.Error("a corrupt rule loaded")
	}
	os.WriteFile(path, []byte(`{"version":9,"rules":[]}`), 0o600)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("future version: %v", err)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	s := &Set{}
	s.Add(mustParse(t, "deny port 5432"), -1)
	c := s.Clone()
	c.Add(mustParse(t, "allow"), 0)
	if s.Len() != 1 || c.Len() != 2 {
		t.Fatalf("original has %d rules, clone %d; want 1 and 2", s.Len(), c.Len())
	}
	if empty := (&Set{}).Clone(); empty.Len() != 0 {
		t.Errorf("clone of an empty set has %d rules", empty.Len())
	}
}
