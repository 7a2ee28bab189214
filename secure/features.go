package secure

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// Feature is one kernel or system capability that secure mode uses, and
// what a probe found out about it.
type Feature struct {
	// Name says what the feature is, e.g. "cgroup sock_addr BPF programs".
	Name string
	// Use says what slim needs it for.
	Use string
	// Required is true when secure mode cannot work without it.
	Required bool
	// Present is true when the probe found the feature.
	Present bool
	// Err is set when the probe could not decide, e.g. for lack of
	// privileges; Present is then false.
	Err error
	// Detail adds a fact about a present feature, e.g. a mount point.
	Detail string
}

// State is "present", "missing" or "unknown" (the probe failed).
func (f Feature) State() string {
	switch {
	case f.Present:
		return "present"
	case f.Err != nil:
		return "unknown"
	default:
		return "missing"
	}
}

// Features is the result of Probe.
type Features struct {
	CgroupSockAddr Feature // cgroup/connect4 and friends: redirect and police connect/bind
	CgroupSockopt  Feature // cgroup/getsockopt and setsockopt: hide the socket swap
	SockOps        Feature // sockops: the SYN's MAC option
	CgroupSKB      Feature // cgroup_skb ingress: drop unsigned SYNs
	SkMsg          Feature // sk_msg: socket-to-socket redirection
	LSM            Feature // BPF LSM: informational, not required
	Cgroup2        Feature // the cgroup v2 hierarchy the programs attach to
	BPFFS          Feature // bpffs, to pin programs and maps across restarts
}

// All returns the features in a stable order.
func (fs Features) All() []Feature {
	return []Feature{fs.CgroupSockAddr, fs.CgroupSockopt, fs.SockOps, fs.CgroupSKB, fs.SkMsg, fs.LSM, fs.Cgroup2, fs.BPFFS}
}

// Missing returns the required features that are not present.
func (fs Features) Missing() []Feature {
	var missing []Feature
	for _, f := range fs.All() {
		if f.Required && !f.Present {
			missing = append(missing, f)
		}
	}
	return missing
}

// String lists every feature, one per line, with its state and what slim
// uses it for; missing or unknown features carry the reason.
func (fs Features) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, f := range fs.All() {
		need := "optional"
		if f.Required {
			need = "required"
		}
		note := f.Use
		switch {
		case f.Present && f.Detail != "":
			note = f.Detail + "; " + f.Use
		case f.Err != nil:
			note = f.Err.Error()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.State(), need, f.Name, note)
	}
	w.Flush()
	return b.String()
}
