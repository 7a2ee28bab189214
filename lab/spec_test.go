package lab

import (
	"strings"
	"testing"
)

func TestSpecValidate(t *testing.T) {
	good := Spec{Name: "demo", Hosts: 2, Containers: 1}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Name: "", Hosts: 2, Containers: 1}, "lab name"},
		{Spec{Name: "a-b", Hosts: 2, Containers: 1}, "lab name"},
		{Spec{Name: "Demo", Hosts: 2, Containers: 1}, "lab name"},
		{Spec{Name: "averyveryverylongname", Hosts: 2, Containers: 1}, "lab name"},
		{Spec{Name: "demo", Hosts: 0, Containers: 1}, "1 to 16 hosts"},
		{Spec{Name: "demo", Hosts: 17, Containers: 1}, "1 to 16 hosts"},
		{Spec{Name: "demo", Hosts: 2, Containers: -1}, "containers per host"},
		{Spec{Name: "demo", Hosts: 2, Containers: 33}, "containers per host"},
	}
	for _, tt := range tests {
		if err := tt.spec.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want error containing %q", tt.spec, err, tt.want)
		}
	}
}

func TestOverlayPlanAddresses(t *testing.T) {
	plan, err := overlayPlan(4, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range plan.Hosts {
		if !strings.HasPrefix(h.Underlay.String(), "198.18.0.") || !strings.HasPrefix(h.Subnet.String(), "198.19.") {
			t.Errorf("host %d outside the benchmarking range: %+v", i+1, h)
		}
	}
	if plan.Hosts[3].Subnet.String() != "198.19.4.0/24" || plan.Hosts[3].Underlay.String() != "198.18.0.4" {
		t.Errorf("host 4 = %+v", plan.Hosts[3])
	}
}

func TestNodeLookup(t *testing.T) {
	l := &Lab{Name: "x", Hosts: []Host{{Name: "h1", Netns: "x-h1", Containers: []Container{{Name: "h1-c1", Netns: "x-h1-c1"}}}}}
	if n, err := l.Node("h1-c1"); err != nil || n.Netns != "x-h1-c1" {
		t.Errorf("Node(h1-c1) = %+v, %v", n, err)
	}
	if _, err := l.Node("h9"); err == nil || !strings.Contains(err.Error(), `no host or container named "h9"`) {
		t.Errorf("Node(h9) error = %v", err)
	}
	if len(l.Nodes()) != 2 {
		t.Errorf("Nodes() = %v", l.Nodes())
	}
}
