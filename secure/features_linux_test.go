package secure

import (
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	slimembed "github.com/slimnet/slim/embed"
)

func TestCgroup2MountOnThisHost(t *testing.T) {
	point, err := Cgroup2Mount()
	if err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	info, err := os.Stat(point)
	if err != nil || !info.IsDir() {
		t.Fatalf("cgroup2 mount point %q is not a directory: %v", point, err)
	}
	if _, err := os.Stat(point + "/cgroup.procs"); err != nil {
		t.Errorf("%s does not look like a cgroup v2 hierarchy: %v", point, err)
	}
}

func TestProbeReportListsEveryFeature(t *testing.T) {
	fs := Probe()
	report := fs.String()
	t.Logf("features:\n%s", report)
	for _, f := range fs.All() {
		if !strings.Contains(report, f.Name) {
			t.Errorf("report does not mention %q", f.Name)
		}
	}
	if lines := strings.Count(report, "\n"); lines != len(fs.All()) {
		t.Errorf("report has %d lines, want one per feature (%d)", lines, len(fs.All()))
	}
}

// TestLoadEmbeddedConnect4 loads the bpf2go-generated program into the
// kernel, proving that the committed object matches what the kernel's
// verifier accepts.
func TestLoadEmbeddedConnect4(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
	if f := Probe().CgroupSockAddr; !f.Present {
		t.Skipf("%s: %s, cannot load cgroup/connect4", f.Name, f.State())
	}
	spec, err := slimembed.LoadConnect4()
	if err != nil {
		t.Fatalf("parse embedded connect4 object: %v", err)
	}
	prog := spec.Programs["slim_connect4"]
	if prog == nil {
		t.Fatal("embedded object has no slim_connect4 program")
	}
	if prog.Type != ebpf.CGroupSockAddr || prog.AttachType != ebpf.AttachCGroupInet4Connect {
		t.Errorf("slim_connect4 is %v/%v, want CGroupSockAddr/AttachCGroupInet4Connect", prog.Type, prog.AttachType)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatalf("load connect4 into the kernel: %v", err)
	}
	coll.Close()
}
