package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// sbinDirs are searched for tools missing from PATH: servers such as nginx
// live there and a user's PATH may not include it.
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// lookTool returns the absolute path of an executable.
func lookTool(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(path); err == nil {
			return abs, nil
		}
	}
	for _, dir := range sbinDirs {
		path := filepath.Join(dir, name)
		if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s not installed: run make deps", name)
}

// lookTools resolves every tool a test needs.
func lookTools(names []string) (map[string]string, error) {
	paths := map[string]string{}
	for _, name := range names {
		path, err := lookTool(name)
		if err != nil {
			return nil, err
		}
		paths[name] = path
	}
	return paths, nil
}
