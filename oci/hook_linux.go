package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// hookTimeout bounds one CNI operation of a hook.
const hookTimeout = 30 * time.Second

// state is what a runtime gives a hook on stdin (the OCI state).
type state struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Bundle string `json:"bundle"`
}

// HookMain is `slim oci-hook attach|detach`, run by the runtime as the
// hooks attachHooks added: attach (createRuntime) runs the network's ADD
// for the container's namespace, detach (poststop) its DEL. It always
// exits 0: a failure is logged, and the container goes on.
func HookMain(args []string, stdin io.Reader) int {
	if len(args) == 0 || (args[0] != "attach" && args[0] != "detach") {
		fmt.Fprintln(os.Stderr, "usage: slim oci-hook attach|detach [--slim-config=FILE] (run by the OCI runtime, with the state on stdin)")
		return 2
	}
	action := args[0]
	configPath, _ := takeConfigPath(args[1:])
	cfg, err := LoadConfig(configPath)
	if err != nil {
		cfg = Config{}
		cfg.setDefaults()
		cfg.logf("oci-hook %s: %v", action, err)
		return 0
	}
	var st state
	if err := json.NewDecoder(io.LimitReader(stdin, 1<<20)).Decode(&st); err != nil || st.ID == "" {
		cfg.logf("oci-hook %s: no container state on stdin: %v", action, err)
		return 0
	}
	if action == "attach" {
		err = attach(cfg, st)
	} else {
		err = detach(cfg, st)
	}
	if err != nil {
		cfg.logf("container %s: %s: %v", shortID(st.ID), action, err)
	}
	return 0
}

func runtimeConf(st state, netnsPath string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: st.ID, NetNS: netnsPath, IfName: "eth0"}
}

// attach runs ADD for the container's network namespace, unless the
// engine gave it interfaces of its own.
func attach(cfg Config, st state) error {
	path := fmt.Sprintf("/proc/%d/ns/net", st.Pid)
	if links, err := interfacesIn(path); err != nil {
		return err
	} else if len(links) > 0 {
		cfg.logf("container %s: not attached to Slim's network: it has interfaces of its own (%s)", shortID(st.ID), strings.Join(links, ", "))
		return nil
	}
	list, err := libcni.ConfListFromFile(cfg.Network)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), hookTimeout)
	defer cancel()
	cni := libcni.NewCNIConfigWithCacheDir(cfg.CNIPath, cfg.CNICacheDir, nil)
	result, err := cni.AddNetworkList(ctx, list, runtimeConf(st, path))
	if err != nil {
		return fmt.Errorf("CNI ADD on network %s: %w", list.Name, err)
	}
	cfg.logf("container %s: attached to network %s%s", shortID(st.ID), list.Name, addresses(result))
	return nil
}

// detach runs DEL (its namespace may be gone: DEL needs none).
func detach(cfg Config, st state) error {
	list, err := libcni.ConfListFromFile(cfg.Network)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), hookTimeout)
	defer cancel()
	cni := libcni.NewCNIConfigWithCacheDir(cfg.CNIPath, cfg.CNICacheDir, nil)
	if err := cni.DelNetworkList(ctx, list, runtimeConf(st, "")); err != nil {
		return fmt.Errorf("CNI DEL on network %s: %w", list.Name, err)
	}
	return nil
}

// interfacesIn lists the interfaces other than lo in a namespace.
func interfacesIn(path string) ([]string, error) {
	handle, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("the container's network namespace %s: %w", path, err)
	}
	defer handle.Close()
	nl, err := netlink.NewHandleAt(handle)
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	links, err := nl.LinkList()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range links {
		if l.Attrs().Name != "lo" {
			names = append(names, l.Attrs().Name)
		}
	}
	return names, nil
}

// addresses is ": ADDR, …" from a CNI result, for the log.
func addresses(result any) string {
	data, err := json.Marshal(result)
	if err != nil {
		return ""
	}
	var parsed struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if json.Unmarshal(data, &parsed) != nil || len(parsed.IPs) == 0 {
		return ""
	}
	var out []string
	for _, ip := range parsed.IPs {
		out = append(out, ip.Address)
	}
	return ": " + strings.Join(out, ", ")
}
