package secure

import (
	"errors"
	"strings"
	"testing"
)

const hybridMounts = `sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
cgroup2 /var/lib/other\040place cgroup2 rw,relatime 0 0
bpf /sys/fs/bpf bpf rw,nosuid,nodev,noexec,relatime,mode=700 0 0
`

func TestFindMountHybridCgroup(t *testing.T) {
	got, err := findMount(strings.NewReader(hybridMounts), "cgroup2")
	if err != nil {
		t.Fatal(err)
	}
	if want := "/sys/fs/cgroup/unified"; got != want {
		t.Errorf("cgroup2 mount = %q, want %q (the first cgroup2 line)", got, want)
	}
	got, err = findMount(strings.NewReader(hybridMounts), "bpf")
	if err != nil || got != "/sys/fs/bpf" {
		t.Errorf("bpf mount = %q, %v; want /sys/fs/bpf", got, err)
	}
}

func TestFindMountIgnoresCgroupV1(t *testing.T) {
	v1only := "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"
	_, err := findMount(strings.NewReader(v1only), "cgroup2")
	if !errors.Is(err, ErrNotMounted) {
		t.Fatalf("err = %v, want ErrNotMounted", err)
	}
	if !strings.Contains(err.Error(), "cgroup2") {
		t.Errorf("error %q does not name the missing file system", err)
	}
}

func TestFindMountUnescapesSpaces(t *testing.T) {
	text := "cgroup2 /mnt/with\\040space\\134x cgroup2 rw 0 0\n"
	got, err := findMount(strings.NewReader(text), "cgroup2")
	if err != nil {
		t.Fatal(err)
	}
	if want := `/mnt/with space\x`; got != want {
		t.Errorf("mount point = %q, want %q", got, want)
	}
}

func TestFindMountEmptyAndMalformed(t *testing.T) {
	for _, text := range []string{"", "garbage\n\n  \nonly two\n"} {
		if _, err := findMount(strings.NewReader(text), "cgroup2"); !errors.Is(err, ErrNotMounted) {
			t.Errorf("findMount(%q) err = %v, want ErrNotMounted", text, err)
		}
	}
}
