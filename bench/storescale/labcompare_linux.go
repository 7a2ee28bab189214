package storescale

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/slimnet/slim/lab"
	"github.com/slimnet/slim/router/directory"
)

// Bounds of the lab comparison's waits.
const (
	labSampleTimeout  = 15 * time.Second
	labRestartTimeout = 30 * time.Second
	labPollInterval   = time.Millisecond
	labListenerPort   = 7000
)

// LabRow is one store's figures on a lab with real routers.
type LabRow struct {
	Store       string          // "static" or "etcd"
	Propagation []time.Duration // listener in h1's table → in every host's table
	Restart     time.Duration   // h1's router restarted: served → its table has every peer's listener
}

// CompareLab measures the static full mesh and etcd on labs of hosts
// hosts with real routers (binary): the propagation of a new listener to
// every host's directory table, and how long a restarted router's table
// lacks its peers' listeners.
func CompareLab(ctx context.Context, binary string, hosts, samples int, progress func(string, ...any)) ([]LabRow, error) {
	var rows []LabRow
	for _, store := range []string{"", lab.StoreEtcd} {
		row, err := compareOne(ctx, binary, hosts, samples, store, progress)
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func compareOne(ctx context.Context, binary string, hosts, samples int, store string, progress func(string, ...any)) (LabRow, error) {
	row := LabRow{Store: store}
	if store == "" {
		row.Store = "static"
	}
	name := fmt.Sprintf("sc%d", os.Getpid()%100000)
	progress("lab %s: %d hosts, routers on the %s store", name, hosts, row.Store)
	l, err := lab.Up(lab.Spec{Name: name, Hosts: hosts, Containers: 1, Store: store})
	if err != nil {
		return row, err
	}
	defer lab.Down(name)
	if err := l.StartRouters(binary); err != nil {
		return row, err
	}
	c := &labCompare{lab: l, binary: binary}
	defer c.stopListeners()
	for i := 1; i < hosts; i++ { // one listener on every other host
		if err := c.listen(i, labListenerPort); err != nil {
			return row, err
		}
	}
	if err := c.waitEverywhere(netip.AddrPortFrom(c.addr(hosts-1), labListenerPort), labSampleTimeout, nil); err != nil {
		return row, err
	}
	for n := range samples {
		d, err := c.sample(labListenerPort + 1 + n)
		if err != nil {
			return row, fmt.Errorf("%s sample %d: %w", row.Store, n, err)
		}
		row.Propagation = append(row.Propagation, d)
		if err := ctx.Err(); err != nil {
			return row, err
		}
	}
	row.Restart, err = c.restart()
	return row, err
}

type labCompare struct {
	lab       *lab.Lab
	binary    string
	listeners []*exec.Cmd
}

// addr is host i's container's overlay address.
func (c *labCompare) addr(i int) netip.Addr { return c.lab.Hosts[i].Containers[0].Addr.Addr() }

// listen starts a listener under slim exec in host i's container.
func (c *labCompare) listen(i, port int) error {
	node, err := c.lab.Node(c.lab.Hosts[i].Containers[0].Name)
	if err != nil {
		return err
	}
	sock, _ := c.lab.RouterSocket(node.Name)
	script := fmt.Sprintf("import socket,time\ns=socket.socket()\ns.bind((%q,%d))\ns.listen()\ntime.sleep(600)", c.addr(i), port)
	cmd := exec.Command(c.binary, "exec", "--", "python3", "-c", script)
	cmd.Env = append(os.Environ(), "SLIM_ROUTER_SOCK="+sock)
	if err := node.Start(cmd); err != nil {
		return err
	}
	c.listeners = append(c.listeners, cmd)
	return nil
}

func (c *labCompare) stopListeners() {
	for _, cmd := range c.listeners {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// sample starts a listener on h1 and times it from h1's table to every
// host's.
func (c *labCompare) sample(port int) (time.Duration, error) {
	target := netip.AddrPortFrom(c.addr(0), uint16(port))
	if err := c.listen(0, port); err != nil {
		return 0, err
	}
	var start time.Time
	err := c.waitEverywhere(target, labSampleTimeout, func(i int) {
		if i == 0 && start.IsZero() {
			start = time.Now()
		}
	})
	if err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// waitEverywhere polls every host's table until each has target; seen is
// told the first time host i's table has it.
func (c *labCompare) waitEverywhere(target netip.AddrPort, timeout time.Duration, seen func(int)) error {
	have := make([]bool, len(c.lab.Hosts))
	missing := len(have)
	deadline := time.Now().Add(timeout)
	for missing > 0 {
		for i, h := range c.lab.Hosts {
			if !have[i] && c.tableHas(h.Name, target) {
				have[i], missing = true, missing-1
				if seen != nil {
					seen(i)
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is missing from %d of %d tables after %v", target, missing, len(have), timeout)
		}
		time.Sleep(labPollInterval)
	}
	return nil
}

func (c *labCompare) tableHas(host string, target netip.AddrPort) bool {
	data, err := os.ReadFile(filepath.Join(c.lab.RouterDir(host), "directory"))
	if err != nil {
		return false
	}
	_, found, _ := directory.Lookup(data, target)
	return found
}

// restart restarts h1's router and times how long after it serves its
// table lacks a listener of another host.
func (c *labCompare) restart() (time.Duration, error) {
	if err := c.lab.RestartRouter(0, c.binary); err != nil {
		return 0, err
	}
	served := time.Now()
	deadline := served.Add(labRestartTimeout)
	for i := 1; i < len(c.lab.Hosts); i++ {
		target := netip.AddrPortFrom(c.addr(i), labListenerPort)
		for !c.tableHas(c.lab.Hosts[0].Name, target) {
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("restarted router: %s not in its table after %v", target, labRestartTimeout)
			}
			time.Sleep(labPollInterval)
		}
	}
	return time.Since(served), nil
}
