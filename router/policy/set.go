package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/slimnet/slim/internal/strictjson"
)

// Set is an ordered list of rules: the first that matches a connection
// decides, and none allows it. It is safe for concurrent use. The kernel
// evaluates the rules and counts their hits (package secure); the set is
// what is saved and shown.
type Set struct {
	mu    sync.Mutex
	rules []Rule
}

// Add inserts a rule at position at (0 is first); at < 0 or past the end
// appends it. It returns the rule's position.
func (s *Set) Add(r Rule, at int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at < 0 || at > len(s.rules) {
		at = len(s.rules)
	}
	s.rules = append(s.rules[:at], append([]Rule{r}, s.rules[at:]...)...)
	return at
}

// Delete removes the rule at position i.
func (s *Set) Delete(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.rules) {
		return fmt.Errorf("no rule %d: the policy has %d rules", i, len(s.rules))
	}
	s.rules = append(s.rules[:i], s.rules[i+1:]...)
	return nil
}

// Len is the number of rules.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rules)
}

// Clone returns a copy of the set, to change without touching the
// original (the copy replaces it once saved).
func (s *Set) Clone() *Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Set{rules: append([]Rule(nil), s.rules...)}
}

// Listed is a rule with its position.
type Listed struct {
	Index int    `json:"index"`
	Rule  Rule   `json:"rule"`
	Text  string `json:"text"`
}

// List returns the rules in order.
func (s *Set) List() []Listed {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Listed, len(s.rules))
	for i, r := range s.rules {
		out[i] = Listed{Index: i, Rule: r, Text: r.String()}
	}
	return out
}

// file is the on-disk form: versioned, rules only.
type file struct {
	Version int    `json:"version"`
	Rules   []Rule `json:"rules"`
}

// loadedFile is the on-disk form as read: each rule is decoded and
// checked on its own, so that an error names the rule.
type loadedFile struct {
	Version int               `json:"version"`
	Rules   []json.RawMessage `json:"rules"`
}

const fileVersion = 1

// Encode is the rules as a document: what Save writes to a file and a
// cluster store keeps (docs/cluster.md), read back by Decode.
func (s *Set) Encode() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rules := s.rules
	if rules == nil {
		rules = []Rule{}
	}
	return json.MarshalIndent(file{Version: fileVersion, Rules: rules}, "", "  ")
}

// Equal says whether two sets hold the same rules in the same order.
func (s *Set) Equal(o *Set) bool {
	a, b := s.List(), o.List()
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Rule != b[i].Rule {
			return false
		}
	}
	return true
}

// Save writes the rules to path atomically: a reader, or a router that
// crashes half way, sees the old file or the new one, never a mix.
func (s *Set) Save(path string) error {
	data, err := s.Encode()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".policy-*")
	if err != nil {
		return fmt.Errorf("saving policy: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("saving policy: %w", err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Chmod(0o600), tmp.Close()); err != nil {
		return fmt.Errorf("saving policy: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("saving policy: %w", err)
	}
	return nil
}

// Load reads rules saved by Save. A missing file is an empty policy. A
// field this router does not know, or a rule that is not valid, is an
// error that names the file and the rule: a rule half understood must
// not be enforced.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Set{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading policy: %w", err)
	}
	s, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("policy file %s%w", path, err)
	}
	return s, nil
}

// DecodeError is a policy document that cannot be enforced; its message
// starts with what follows the document's name (", rule 2: …", " is
// corrupt: …").
type DecodeError struct{ msg string }

func (e *DecodeError) Error() string { return e.msg }

// Decode reads a document made by Encode; empty data is an empty policy.
// Like Load, it refuses what it does not fully understand.
func Decode(data []byte) (*Set, error) {
	if len(data) == 0 {
		return &Set{}, nil
	}
	var f loadedFile
	if err := strictjson.Unmarshal(data, &f); err != nil {
		return nil, &DecodeError{" is corrupt: " + err.Error()}
	}
	if f.Version != fileVersion {
		return nil, &DecodeError{fmt.Sprintf(" has version %d, this router reads %d", f.Version, fileVersion)}
	}
	s := &Set{}
	for i, raw := range f.Rules {
		r, err := decodeRule(raw)
		if err != nil {
			return nil, &DecodeError{fmt.Sprintf(", rule %d: %v", i+1, err)}
		}
		s.Add(r, -1)
	}
	return s, nil
}
