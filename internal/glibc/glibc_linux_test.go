package glibc

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimnet/slim/internal/testenv"
)

// The shim must load on glibc 2.17 and later (preload/compat.h): before,
// it needed GLIBC_2.34 and programs of an older glibc did not start.
func TestShimLoadsOnGlibc217(t *testing.T) {
	need, err := ShimNeeds()
	if err != nil {
		t.Fatal(err)
	}
	if (Version{2, 17}).Less(need) {
		t.Errorf("the shim needs glibc %s; it must load on 2.17 (objdump -T embed/libslim.so | grep GLIBC_)", need)
	}
}

func TestProvidedIsTheHostGlibc(t *testing.T) {
	testenv.Tools(t, "getconf")
	out, err := exec.Command("getconf", "GNU_LIBC_VERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimPrefix(strings.TrimSpace(string(out)), "glibc ")
	_, libc, err := HostRoot.Resolve("/lib64/ld-linux-x86-64.so.2")
	if err != nil {
		testenv.Require(t, false, "not an x86_64 glibc host: "+err.Error())
	}
	// glibc X.Y defines symbol versions up to GLIBC_X.Y, or a little older
	// when a release added none (2.31 defines up to GLIBC_2.30).
	got, ok, err := Provided(filepath.Join(filepath.Dir(libc), "libc.so.6"))
	release, _ := parseSymbolVersion("GLIBC_" + want)
	if err != nil || !ok || release.Less(got) || got.Less(Version{release.Major, release.Minor - 2}) {
		t.Errorf("Provided = %v, %v, %v; want about glibc %s", got, ok, err, want)
	}
	if reason, err := Check(HostRoot, "/lib64/ld-linux-x86-64.so.2"); reason != "" || err != nil {
		t.Errorf("Check(host) = %q, %v; want the shim loadable", reason, err)
	}
}

func TestCheckOldGlibcRoot(t *testing.T) {
	root := Root{Dir: testenv.OldGlibcRoot(t)}
	const loader = "/lib64/ld-linux-x86-64.so.2"
	if reason, err := Check(root, loader); reason != "" || err != nil {
		t.Errorf("Debian 11 (glibc 2.31): %q, %v; want the shim loadable", reason, err)
	}
	reason, err := check(root, loader, Version{2, 99})
	if err != nil || reason != "the glibc /lib/x86_64-linux-gnu/libc.so.6 is older than the shim needs (its newest symbol version is GLIBC_2.30; the shim needs GLIBC_2.99)" {
		t.Errorf("against a shim that needs 2.99: %q, %v", reason, err)
	}
}

func TestCheckWithoutGlibc(t *testing.T) {
	dir := t.TempDir()
	mkdirs(t, dir, "lib", "lib64")
	const loader = "/lib64/ld-linux-x86-64.so.2"
	if reason, _ := Check(Root{Dir: dir}, loader); reason != "there is no glibc loader at "+loader {
		t.Errorf("empty root: %q", reason)
	}
	// A loader, and a libc.so.6 that is no glibc (a musl-like library).
	write(t, filepath.Join(dir, "lib/ld-linux-x86-64.so.2"), "")
	symlink(t, "/lib/ld-linux-x86-64.so.2", filepath.Join(dir, "lib64/ld-linux-x86-64.so.2"))
	if reason, _ := Check(Root{Dir: dir}, loader); reason != "there is no libc.so.6 beside the loader /lib/ld-linux-x86-64.so.2" {
		t.Errorf("no libc: %q", reason)
	}
	true_, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "lib/libc.so.6"), string(true_))
	if reason, _ := Check(Root{Dir: dir}, loader); reason != "/lib/libc.so.6 is not glibc" {
		t.Errorf("libc.so.6 not glibc: %q", reason)
	}
}

func TestResolveStaysInRootAndFollowsMounts(t *testing.T) {
	dir, usr := t.TempDir(), t.TempDir()
	mkdirs(t, usr, "lib/x86_64-linux-gnu")
	write(t, filepath.Join(usr, "lib/x86_64-linux-gnu/libc.so.6"), "")
	symlink(t, "usr/lib", filepath.Join(dir, "lib"))
	symlink(t, "/../../../../lib/x86_64-linux-gnu/libc.so.6", filepath.Join(dir, "escape"))
	symlink(t, "loop", filepath.Join(dir, "loop"))
	root := Root{Dir: dir, Mounts: []Mount{{Source: usr, Destination: "/usr"}, {Destination: "/run"}}}

	inRoot, onHost, err := root.Resolve("/lib/x86_64-linux-gnu/libc.so.6")
	if err != nil || inRoot != "/usr/lib/x86_64-linux-gnu/libc.so.6" || onHost != filepath.Join(usr, "lib/x86_64-linux-gnu/libc.so.6") {
		t.Errorf("through a link and a mount: %q %q %v", inRoot, onHost, err)
	}
	// ".." at the root is the root: the link ends in the mount, not on the host.
	if _, onHost, err := root.Resolve("/escape"); err != nil || !strings.HasPrefix(onHost, usr) {
		t.Errorf("escape: %q %v; want a path in the root", onHost, err)
	}
	if _, _, err := root.Resolve("/loop"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("loop: %v", err)
	}
	if !root.Exists("/run") || root.Exists("/run/anything") {
		t.Errorf("an empty mount holds only its root")
	}
}

func mkdirs(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// definedVersions reads the same names as debug/elf, faster.
func TestDefinedVersionsMatchDebugElf(t *testing.T) {
	_, libc, err := HostRoot.Resolve("/lib/x86_64-linux-gnu/libc.so.6")
	if err != nil {
		testenv.Require(t, false, "not an x86_64 Debian-like glibc host: "+err.Error())
	}
	f, err := elf.Open(libc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defs, err := f.DynamicVersions()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, d := range defs {
		want = append(want, d.Name)
	}
	got, err := definedVersions(f)
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("definedVersions = %q, %v; debug/elf says %q", got, err, want)
	}
}
