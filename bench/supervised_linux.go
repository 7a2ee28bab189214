package bench

import (
	"context"
	"debug/elf"
	_ "embed" // for go:embed
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/slimnet/slim/lab"
)

//go:embed peer/main.go
var peerGoSource []byte

//go:embed peerc/peer.c
var peerCSource []byte

// peerPrograms are the builds of the peer the supervised mode runs.
type peerPrograms struct {
	goStatic string // bench/peer, CGO_ENABLED=0
	cDynamic string // bench/peerc against glibc: the shim is preloaded
	cStatic  string // bench/peerc, -static: supervised
}

// runSupervised runs the supervised mode: the peer's tests in the mode's
// own columns.
func (b *bencher) runSupervised(ctx context.Context, l *lab.Lab) (err error) {
	selected, err := selectPeerTests(b.opts.Only)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "slim-bench-peer-")
	if err != nil {
		return fmt.Errorf("creating a directory for the peer's builds: %w", err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	fmt.Fprintf(b.progress, "building the peer (Go, static; C, dynamic and static) in %s\n", dir)
	programs, err := buildPeers(ctx, dir)
	if err != nil {
		return err
	}
	columns, err := supervisedScenarios(l, b.opts, programs)
	if err != nil {
		return err
	}
	b.report.Scenarios, b.report.Supervised = columns, true
	b.total = len(selected) * b.opts.Runs * len(columns)
	for _, t := range selected {
		if err := b.runTest(ctx, t); err != nil {
			return err
		}
	}
	b.report.Notes = supervisedNotes(b.report)
	return nil
}

// supervisedScenarios are the mode's columns: each runs one build of the
// peer in place of peerTool, wrapped as its base column wraps tools. With
// --secure, the preloaded and the supervised peer run in the secure
// column's containers too.
func supervisedScenarios(l *lab.Lab, opts Options, p peerPrograms) ([]Scenario, error) {
	base, _, err := scenarios(l, Options{Slim: opts.Slim, Secure: opts.Secure})
	if err != nil {
		return nil, err
	}
	byName := map[string]Scenario{}
	for _, sc := range base {
		byName[sc.Name] = sc
	}
	host, overlay, accelerated := byName["host"], byName["overlay"], byName["slim"]
	if accelerated.Name == "" {
		return nil, errors.New("the supervised mode needs the slim column")
	}
	columns := []Scenario{
		runningPeer(host, columnHost, p.goStatic),
		runningPeer(overlay, columnOverlay, p.goStatic),
		runningPeer(accelerated, columnPreloaded, p.cDynamic),
		runningPeer(accelerated, columnSupervised, p.goStatic),
		runningPeer(accelerated, columnSupervisedC, p.cStatic),
	}
	if secure, ok := byName["secure"]; ok {
		columns = append(columns,
			runningPeer(secure, columnPreloadedSecure, p.cDynamic),
			runningPeer(secure, columnSupervisedSecure, p.goStatic))
	}
	return columns, nil
}

// runningPeer is a column that runs program wherever a test names
// peerTool.
func runningPeer(base Scenario, name, program string) Scenario {
	sc := base
	sc.Name = name
	wrap := base.Wrap
	sc.Wrap = func(node lab.Node, argv []string) []string {
		if argv[0] == peerTool {
			argv = append([]string{program}, argv[1:]...)
		}
		return wrap(node, argv)
	}
	return sc
}

// buildPeers compiles the embedded sources of the peer into dir and checks
// that each build is linked the way its column needs.
func buildPeers(ctx context.Context, dir string) (peerPrograms, error) {
	goCmd, err := lookGo()
	if err != nil {
		return peerPrograms{}, err
	}
	cc, err := lookCC()
	if err != nil {
		return peerPrograms{}, err
	}
	p := peerPrograms{
		goStatic: filepath.Join(dir, "peer-go"),
		cDynamic: filepath.Join(dir, "peer-c"),
		cStatic:  filepath.Join(dir, "peer-c-static"),
	}
	goSource, cSource := filepath.Join(dir, "main.go"), filepath.Join(dir, "peer.c")
	if err := os.WriteFile(goSource, peerGoSource, 0o644); err != nil {
		return p, err
	}
	if err := os.WriteFile(cSource, peerCSource, 0o644); err != nil {
		return p, err
	}
	goBuild := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-o", p.goStatic, goSource)
	goBuild.Dir = dir
	goBuild.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOTOOLCHAIN=local", "GO111MODULE=on")
	if os.Getenv("HOME") == "" && os.Getenv("GOCACHE") == "" {
		goBuild.Env = append(goBuild.Env, "GOCACHE="+filepath.Join(dir, "gocache"))
	}
	cFlags := []string{"-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread"}
	builds := []*exec.Cmd{
		goBuild,
		exec.CommandContext(ctx, cc, append(cFlags, "-o", p.cDynamic, cSource)...),
		exec.CommandContext(ctx, cc, append(cFlags, "-static", "-o", p.cStatic, cSource)...),
	}
	for _, build := range builds {
		if out, err := build.CombinedOutput(); err != nil {
			return p, fmt.Errorf("building the peer (%s): %w: %s", strings.Join(build.Args, " "), err, tail(out))
		}
	}
	for path, dynamic := range map[string]bool{p.goStatic: false, p.cDynamic: true, p.cStatic: false} {
		if err := checkLinking(path, dynamic); err != nil {
			return p, err
		}
	}
	return p, nil
}

// checkLinking fails unless the program has an interpreter exactly when
// it should be dynamically linked.
func checkLinking(path string, dynamic bool) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	hasInterp := false
	for _, prog := range f.Progs {
		hasInterp = hasInterp || prog.Type == elf.PT_INTERP
	}
	if hasInterp != dynamic {
		return fmt.Errorf("%s: dynamically linked is %v, want %v", path, hasInterp, dynamic)
	}
	return nil
}

// goInstallDirs are searched for go when it is not on PATH (sudo's PATH
// often lacks the official install's directory).
var goInstallDirs = []string{"/usr/local/go/bin", "/usr/lib/go/bin"}

func lookGo() (string, error) {
	if path, err := exec.LookPath("go"); err == nil {
		return filepath.Abs(path)
	}
	for _, dir := range goInstallDirs {
		path := filepath.Join(dir, "go")
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	return "", errors.New("the supervised mode builds its Go peer: go not found on PATH or in " + strings.Join(goInstallDirs, ", "))
}

func lookCC() (string, error) {
	for _, name := range []string{"cc", "gcc"} {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", errors.New("the supervised mode builds its C peer: no C compiler (cc, gcc) on PATH (make deps)")
}
