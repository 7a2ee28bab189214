package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadMessages: a lab state file with a field this slim does not know,
// or otherwise not what it wrote, is refused with a message naming the
// file, the field and the way out.
func TestLoadMessages(t *testing.T) {
	saved := StateDir
	StateDir = t.TempDir()
	t.Cleanup(func() { StateDir = saved })
	good := Lab{Name: "demo", Hosts: []Host{{Name: "h1", Netns: "demo-h1"}}}
	if err := good.save(); err != nil {
		t.Fatal(err)
	}
	if l, err := Load("demo"); err != nil || len(l.Hosts) != 1 {
		t.Fatalf("Load of a saved lab: %+v, %v", l, err)
	}
	if st, err := os.Stat(statePath("demo")); err != nil || st.Mode().Perm() != privateFileMode {
		t.Errorf("lab state file: %v, %v; want mode %o", st.Mode(), err, privateFileMode)
	}
	tests := map[string]struct{ text, want string }{
		"unknown field":        {`{"name": "demo", "hostz": []}`, `unknown field "hostz"`},
		"unknown nested field": {`{"name": "demo", "hosts": [{"name": "h1", "netnz": "x"}]}`, `unknown field "netnz"`},
		"wrong type":           {`{"name": "demo", "hosts": {}}`, `field "hosts" is an object, want an array`},
		"bad address":          {`{"name": "demo", "hosts": [{"wire": "198.18.0.1"}]}`, `no '/'`},
		"trailing data":        {`{"name": "demo"} x`, "unexpected data after the JSON value"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(StateDir, "demo.json"), []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load("demo")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "slim lab down --name demo") {
				t.Errorf("Load: %v, want an error saying %q and how to recover", err, tt.want)
			}
		})
	}
}
