package testenv

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// OldGlibcDebs is where scripts/fetch-old-glibc.sh (run by make deps) puts
// a Debian 11 userland: libc6 2.31, dash and netcat-traditional.
const OldGlibcDebs = "/var/cache/slim-testdata/bullseye"

// OldGlibcRoot unpacks that userland into a new directory of t and returns
// it: a root file system with glibc 2.31, /bin/sh and /bin/nc.traditional.
func OldGlibcRoot(t testing.TB) string {
	t.Helper()
	Tools(t, "dpkg-deb")
	debs, _ := filepath.Glob(filepath.Join(OldGlibcDebs, "*.deb"))
	Require(t, len(debs) >= 6, "no Debian 11 packages in "+OldGlibcDebs+" (make deps runs scripts/fetch-old-glibc.sh)")
	root := t.TempDir()
	for _, deb := range debs {
		if out, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
			t.Fatalf("unpack %s: %v\n%s", deb, err, out)
		}
	}
	return root
}
