package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/slimnet/slim/internal/strictjson"
)

// StateDir holds one JSON file per lab that is up.
var StateDir = "/run/slim/lab"

func statePath(name string) string { return filepath.Join(StateDir, name+".json") }

// ErrNotUp is returned by Load for a lab that is not up.
var ErrNotUp = errors.New("lab is not up")

// Load reads the state of a lab that is up.
func Load(name string) (*Lab, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(statePath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab %s: %w (start it with: slim lab up --name %s)", name, ErrNotUp, name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading lab state: %w", err)
	}
	var l Lab
	if err := strictjson.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("lab state %s is corrupt (run slim lab down --name %s): %w", statePath(name), name, err)
	}
	return &l, nil
}

// save writes the lab's state atomically.
func (l *Lab) save() error {
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := mkdirPrivate(StateDir); err != nil {
		return err
	}
	tmp := statePath(l.Name) + ".tmp"
	os.Remove(tmp) // WriteFile keeps the mode of a file that exists
	if err := os.WriteFile(tmp, append(data, '\n'), privateFileMode); err != nil {
		return fmt.Errorf("writing lab state: %w", err)
	}
	if err := os.Rename(tmp, statePath(l.Name)); err != nil {
		return fmt.Errorf("writing lab state: %w", err)
	}
	return nil
}

// removeState removes the lab's state file and its routers' directories.
func removeState(name string) error {
	for _, p := range []string{statePath(name), statePath(name) + ".tmp", filepath.Join(StateDir, name)} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("removing lab state: %w", err)
		}
	}
	return nil
}
