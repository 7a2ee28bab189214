package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	named "github.com/slimnet/slim/internal/netns"
	"github.com/slimnet/slim/internal/testenv"
)

// childEnv makes the test binary run netnsScenario instead of the tests
// (see TestMain).
const childEnv = "SLIM_LAB_NETNS_SCENARIO"

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		if err := netnsScenario(name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestIntegrationLabBesideIPNetns is the fresh-machine failure of issue 10:
// with /run/netns not a mount point, a lab is brought up, `ip netns add` and
// `ip netns del` run beside it, and the lab is taken down. Nothing may be
// left. It runs in a private mount namespace, where /run/netns can be
// unmounted without touching the machine's other namespaces.
func TestIntegrationLabBesideIPNetns(t *testing.T) {
	requireRoot(t)
	testenv.Tools(t, "unshare", "ip")
	name := uniqueName("nsr")
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--", os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("scenario failed: %v\n%s", err, out)
	}
	// The private mount namespace is gone; what it left in /run/netns would
	// be plain files.
	if left, _ := Leftovers(name); len(left) > 0 {
		t.Errorf("left in %s: %v", named.Dir, left)
		for _, ns := range left {
			os.Remove(named.Path(ns))
		}
	}
}

func netnsScenario(name string) error {
	if err := unmountAll(named.Dir); err != nil {
		return err
	}
	if _, err := Up(Spec{Name: name, Hosts: 2, Containers: 1}); err != nil {
		return fmt.Errorf("lab up: %w", err)
	}
	other := name + "-ipnetns"
	var errs []error
	for _, args := range [][]string{{"netns", "add", other}, {"netns", "del", other}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out))
		}
	}
	if err := Down(name); err != nil {
		errs = append(errs, fmt.Errorf("lab down: %w", err))
	}
	if left, _ := Leftovers(name); len(left) > 0 {
		errs = append(errs, fmt.Errorf("namespaces left after down: %v", left))
	}
	if mounts, err := mountsBelow(named.Path(name)); err != nil || len(mounts) > 0 {
		errs = append(errs, fmt.Errorf("mounts of the lab left in %s: %v %v", named.Dir, mounts, err))
	}
	return errors.Join(errs...)
}

// unmountAll unmounts dir until it is no longer a mount point.
func unmountAll(dir string) error {
	for range 64 {
		err := unix.Unmount(dir, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unmounting %s: %w", dir, err)
		}
	}
	return fmt.Errorf("%s is still a mount point after 64 unmounts", dir)
}

// mountsBelow lists this mount namespace's mount points under prefix.
func mountsBelow(prefix string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var found []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], prefix) {
			found = append(found, fields[4])
		}
	}
	return found, scanner.Err()
}
