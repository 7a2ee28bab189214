package secure

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
)

// Probe asks the running kernel which of the features secure mode uses it
// offers. Probing BPF program types loads tiny programs, so without
// CAP_BPF (or root) those features come back unknown rather than missing.
func Probe() Features {
	fs := Features{
		CgroupSockAddr: probeProgramType(ebpf.CGroupSockAddr, "cgroup sock_addr BPF programs",
			"check connect and bind on host sockets and rewrite their addresses", true),
		CgroupSockopt: probeProgramType(ebpf.CGroupSockopt, "cgroup sockopt BPF programs",
			"refuse socket options that re-target a host socket", true),
		SockOps: probeProgramType(ebpf.SockOps, "sockops BPF programs",
			"sign each accelerated SYN with a TCP option", true),
		SkMsg: probeProgramType(ebpf.SkMsg, "sk_msg BPF programs",
			"socket-to-socket redirection", false),
		LSM: probeProgramType(ebpf.LSM, "BPF LSM programs",
			"informational: secure mode does not need them", false),
		CgroupSKB: probeProgramType(ebpf.CGroupSKB, "cgroup skb BPF programs",
			"drop SYNs to host listeners that lack the cluster key's MAC", true),
		Cgroup2: probeMount(Cgroup2Mount, "cgroup v2 hierarchy in this mount namespace",
			"attach its programs to the router's and containers' cgroups (note: `ip netns exec` remounts /sys without it; use nsenter --net)", true),
		BPFFS: probeMount(BPFFSMount, "bpffs",
			"pin programs and maps so they outlive the router (mounted at /sys/fs/bpf if missing)", false),
	}
	return fs
}

func probeProgramType(t ebpf.ProgramType, name, use string, required bool) Feature {
	f := Feature{Name: name, Use: use, Required: required}
	err := features.HaveProgramType(t)
	switch {
	case err == nil:
		f.Present = true
	case errors.Is(err, ebpf.ErrNotSupported):
		// Missing: the kernel does not know the program type.
	default:
		f.Err = fmt.Errorf("probe %s: %w", t, err)
	}
	return f
}

func probeMount(find func() (string, error), name, use string, required bool) Feature {
	f := Feature{Name: name, Use: use, Required: required}
	point, err := find()
	switch {
	case err == nil:
		f.Present = true
		f.Detail = "mounted at " + point
	case errors.Is(err, ErrNotMounted):
		// Missing.
	default:
		f.Err = err
	}
	return f
}

// Cgroup2Mount returns where the cgroup v2 hierarchy is mounted, as listed
// in /proc/mounts (it may be /sys/fs/cgroup or, on hybrid systems, a
// subdirectory such as /sys/fs/cgroup/unified).
func Cgroup2Mount() (string, error) {
	point, err := findProcMount("cgroup2")
	if errors.Is(err, ErrNotMounted) {
		return "", fmt.Errorf("cgroup v2 is not mounted (secure mode needs it; mount it with `mount -t cgroup2 none /sys/fs/cgroup`): %w", err)
	}
	return point, err
}

// BPFFSMount returns where a bpf file system is mounted.
func BPFFSMount() (string, error) {
	point, err := findProcMount("bpf")
	if errors.Is(err, ErrNotMounted) {
		return "", fmt.Errorf("bpffs is not mounted (mount it with `mount -t bpf bpf /sys/fs/bpf`): %w", err)
	}
	return point, err
}

func findProcMount(fstype string) (string, error) {
	const mountTable = "/proc/mounts"
	f, err := os.Open(mountTable)
	if err != nil {
		return "", fmt.Errorf("find %s mount: %w", fstype, err)
	}
	defer f.Close()
	point, err := findMount(f, fstype)
	if err != nil {
		return "", fmt.Errorf("%s: %w", mountTable, err)
	}
	return point, nil
}
