package lab

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// RestartRouter stops the main router of host i (SIGTERM, a clean stop)
// and starts it again with binary and the lab's cluster key; it returns
// when the new router serves its socket.
func (l *Lab) RestartRouter(i int, binary string) error {
	if err := l.stopRouter(i); err != nil {
		return err
	}
	key, err := l.EnsureClusterKey()
	if err != nil {
		return err
	}
	return l.startRouter(i, RouterSet{Binary: binary, Args: []string{"--key-file", key}})
}

// stopRouter ends the router processes in host i's namespace.
func (l *Lab) stopRouter(i int) error {
	pids, err := pidsInNamespace(l.Hosts[i].Netns)
	if err != nil {
		return err
	}
	var routers []int
	for _, pid := range pids {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmdline), "\x00router\x00") {
			routers = append(routers, pid)
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range routers {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("router %d of %s did not stop", pid, l.Hosts[i].Name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}
