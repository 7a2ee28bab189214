package router

import (
	"fmt"
	"strings"
	"testing"

	"github.com/slimnet/slim/internal/netns"
	"github.com/slimnet/slim/internal/testenv"
)

// TestRegisterContainersRefusesSharedNetns: two containers given the same
// network namespace under different paths, or a container given the
// router's own (the host's), stop the router, naming both.
func TestRegisterContainersRefusesSharedNetns(t *testing.T) {
	testenv.Integration(t)
	scratch, err := netns.NewScratch()
	if err != nil {
		t.Fatal(err)
	}
	defer scratch.Close()
	other := fmt.Sprintf("/proc/self/fd/%d", scratch.Fd())
	tests := []struct {
		name       string
		containers []ContainerConfig
		want       string
	}{
		{"one namespace, two paths", []ContainerConfig{
			{Name: "a", Netns: scratch.Path(), Addr: "198.19.1.2"},
			{Name: "b", Netns: other, Addr: "198.19.1.3"},
		}, "container b: netns " + other + " is the network namespace of container a too"},
		{"the host's namespace", []ContainerConfig{
			{Name: "h", Netns: "/proc/self/ns/net", Addr: "198.19.1.2"},
		}, "container h: netns /proc/self/ns/net is the router's own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := containerTestRouter(t, tt.containers)
			if err := r.registerContainers(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("registerContainers: %v, want %q", err, tt.want)
			}
		})
	}
	r := containerTestRouter(t, []ContainerConfig{{Name: "a", Netns: scratch.Path(), Addr: "198.19.1.2"}})
	if err := r.registerContainers(); err != nil || r.containers.len() != 1 {
		t.Errorf("one container in its own namespace: %v", err)
	}
}
