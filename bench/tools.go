package bench

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// sbinDirs are searched for tools missing from PATH: servers such as nginx
// live there and a user's PATH may not include it.
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// lookTool returns the absolute path of an executable. Names made by
// pgTool are looked for in PostgreSQL's directory instead.
func lookTool(name string) (string, error) {
	if program, ok := strings.CutPrefix(name, pgToolPrefix); ok {
		return lookPostgresTool(program)
	}
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

// postgresBinDirs is where Debian installs PostgreSQL's programs, one
// directory per major version.
const postgresBinDirs = "/usr/lib/postgresql/*/bin"

// lookPostgresTool finds a PostgreSQL program in the directory of the
// newest version installed: the real program, not the wrapper script
// Debian puts on PATH.
func lookPostgresTool(name string) (string, error) {
	dirs, _ := filepath.Glob(postgresBinDirs)
	slices.SortFunc(dirs, func(a, b string) int { return cmp.Compare(postgresVersion(b), postgresVersion(a)) })
	for _, dir := range dirs {
		path := filepath.Join(dir, name)
		if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s not installed (PostgreSQL, in %s): run make deps", name, postgresBinDirs)
}

// postgresVersion is the major version in a path like
// /usr/lib/postgresql/15/bin; 0 if there is none.
func postgresVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
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
