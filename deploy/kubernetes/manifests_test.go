// Package kubernetes holds Slim's Kubernetes manifests; its test decodes
// them with the Kubernetes API types (no cluster runs here) and installs
// their configuration into a scratch root with slim install's code.
package kubernetes

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/slimnet/slim/internal/nodeinstall"
	"github.com/slimnet/slim/oci"
	"github.com/slimnet/slim/router"
)

// manifests are every object of the *.yaml files here, decoded strictly
// (an unknown or misspelt field fails) into its API type.
type manifests struct {
	daemonSet      *appsv1.DaemonSet
	configMap      *corev1.ConfigMap
	serviceAccount *corev1.ServiceAccount
	runtimeClass   *nodev1.RuntimeClass
}

func load(t *testing.T) manifests {
	t.Helper()
	files, _ := filepath.Glob("*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests")
	}
	var m manifests
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s #%d: %v", file, i, err)
			}
			var into any
			switch meta.APIVersion + " " + meta.Kind {
			case "apps/v1 DaemonSet":
				m.daemonSet = &appsv1.DaemonSet{}
				into = m.daemonSet
			case "v1 ConfigMap":
				m.configMap = &corev1.ConfigMap{}
				into = m.configMap
			case "v1 ServiceAccount":
				m.serviceAccount = &corev1.ServiceAccount{}
				into = m.serviceAccount
			case "node.k8s.io/v1 RuntimeClass":
				m.runtimeClass = &nodev1.RuntimeClass{}
				into = m.runtimeClass
			default:
				t.Fatalf("%s #%d: unexpected %s %s", file, i, meta.APIVersion, meta.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, into); err != nil {
				t.Fatalf("%s #%d (%s): %v", file, i, meta.Kind, err)
			}
		}
	}
	if m.daemonSet == nil || m.configMap == nil || m.serviceAccount == nil || m.runtimeClass == nil {
		t.Fatalf("missing objects: %+v", m)
	}
	return m
}

func TestDaemonSetRunsTheRouterOnTheHost(t *testing.T) {
	m := load(t)
	ds := m.daemonSet
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork || !pod.HostPID {
		t.Error("the router needs the host's network and PID namespaces")
	}
	if pod.ServiceAccountName != m.serviceAccount.Name || m.serviceAccount.Namespace != ds.Namespace {
		t.Errorf("service account %q, defined %s/%s", pod.ServiceAccountName, m.serviceAccount.Namespace, m.serviceAccount.Name)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("Slim does not call the API: no token should be mounted")
	}
	if !labelsMatch(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels) {
		t.Errorf("selector %v does not select the template's labels %v", ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels)
	}
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("want one install and one router container")
	}
	install, routerC := pod.InitContainers[0], pod.Containers[0]
	if !slices.Equal(install.Command[:2], []string{"/slim", "install"}) || !slices.Equal(routerC.Command[:3], []string{"/slim", "router", "--config=" + nodeinstall.RouterConfig}) {
		t.Errorf("commands %q and %q", install.Command, routerC.Command)
	}
	if routerC.SecurityContext == nil || routerC.SecurityContext.Privileged == nil || !*routerC.SecurityContext.Privileged {
		t.Error("the router must be privileged (network devices, namespaces, secure mode's BPF)")
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	hostPaths := map[string]bool{}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		for _, vm := range c.VolumeMounts {
			v, ok := volumes[vm.Name]
			if !ok {
				t.Errorf("%s mounts %q, which is no volume", c.Name, vm.Name)
				continue
			}
			if v.HostPath != nil {
				hostPaths[v.HostPath.Path] = true
				if c.Name == "router" && v.HostPath.Path == "/run/netns" && (vm.MountPropagation == nil || *vm.MountPropagation != corev1.MountPropagationHostToContainer) {
					t.Errorf("%s at %s: namespaces made after the router started must show (HostToContainer)", vm.Name, vm.MountPath)
				}
			}
			if v.ConfigMap != nil && v.ConfigMap.Name != m.configMap.Name {
				t.Errorf("volume %s names ConfigMap %q, defined %q", v.Name, v.ConfigMap.Name, m.configMap.Name)
			}
		}
	}
	for _, want := range []string{"/run/slim", "/run/netns", "/opt/cni/bin", "/etc/cni/net.d", "/etc/slim", "/opt/slim/bin", "/sys/fs/cgroup", "/sys/fs/bpf"} {
		if !hostPaths[want] {
			t.Errorf("the host's %s is not mounted", want)
		}
	}
	if m.runtimeClass.Handler != "slim" {
		t.Errorf("RuntimeClass handler %q", m.runtimeClass.Handler)
	}
}

func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// TestConfigMapInstalls runs slim install's code on the ConfigMap's data,
// as the init container does on each node.
func TestConfigMapInstalls(t *testing.T) {
	m := load(t)
	configDir, hostRoot := t.TempDir(), t.TempDir()
	for name, content := range m.configMap.Data {
		if err := os.WriteFile(filepath.Join(configDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	routerConfig, err := router.LoadConfig(filepath.Join(configDir, "router.json"))
	if err != nil {
		t.Fatal(err)
	}
	second, _ := netip.ParseAddr(routerConfig.Hosts[1].Underlay)
	binary := filepath.Join(t.TempDir(), "slim")
	os.WriteFile(binary, []byte("#!/bin/sh\n"), 0o755)
	done, err := nodeinstall.Install(nodeinstall.Options{HostRoot: hostRoot, ConfigDir: configDir, NodeAddress: second, Binary: binary})
	if err != nil {
		t.Fatalf("install: %v (did %q)", err, done)
	}
	installed, err := router.LoadConfig(filepath.Join(hostRoot, nodeinstall.RouterConfig))
	if err != nil || installed.Self != 1 {
		t.Errorf("installed router config: self %d, %v; want the second host", installed.Self, err)
	}
	list, err := libcni.ConfListFromFile(filepath.Join(hostRoot, nodeinstall.CNIConfDir, nodeinstall.CNIConfName))
	if err != nil {
		t.Fatal(err)
	}
	var plugin struct {
		Type         string `json:"type"`
		RouterConfig string `json:"routerConfig"`
	}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &plugin); err != nil || plugin.Type != "slim" || plugin.RouterConfig != nodeinstall.RouterConfig {
		t.Errorf("CNI plugin %+v, %v", plugin, err)
	}
	runtimeConfig, err := oci.LoadConfig(filepath.Join(hostRoot, nodeinstall.RuntimeConfig))
	if err != nil || runtimeConfig.RouterDir != routerConfig.Dir {
		t.Errorf("runtime config: router_dir %q (router dir %q), %v", runtimeConfig.RouterDir, routerConfig.Dir, err)
	}
	if target, err := os.Readlink(filepath.Join(hostRoot, nodeinstall.CNIBinDir, "slim")); err != nil || target != filepath.Join(nodeinstall.BinDir, "slim") {
		t.Errorf("CNI plugin link: %q, %v", target, err)
	}
	if info, err := os.Stat(filepath.Join(hostRoot, nodeinstall.RouterConfig)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("router config mode: %v, %v", info, err)
	}
	for _, line := range done {
		if strings.Contains(line, "\n") {
			t.Errorf("install line %q", line)
		}
	}

	// A node that is not in the hosts list: a message that says what to do.
	stranger := netip.MustParseAddr("198.18.0.99")
	_, err = nodeinstall.Install(nodeinstall.Options{HostRoot: t.TempDir(), ConfigDir: configDir, NodeAddress: stranger, Binary: binary})
	if err == nil || !strings.Contains(err.Error(), "this node's address 198.18.0.99 is not among the hosts") {
		t.Errorf("unknown node: %v", err)
	}
}
