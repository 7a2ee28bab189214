package storescale

import (
	"fmt"
	"io"
	"time"
)

// Options of a run.
type Options struct {
	Hosts       int // simulated routers that publish listeners
	Listeners   int // listeners per host
	Samples     int // propagation samples
	FullRouters int // extra routers that run the whole store (state, checks)
	EtcdMembers int // 1 or 3
	TTL         time.Duration
	// Probe is the slim binary that runs the memory probe in a process of
	// its own ("": measure in this process, less exactly).
	Probe    string
	Progress io.Writer
}

// Defaults: the target cluster.
func Defaults() Options {
	return Options{Hosts: 1000, Listeners: 100, Samples: 100, FullRouters: 10, EtcdMembers: 1, TTL: 10 * time.Second}
}

// Validate reports the first bad option.
func (o Options) Validate() error {
	switch {
	case o.Hosts < 2 || o.Hosts > 4000:
		return fmt.Errorf("--hosts %d: want 2 to 4000", o.Hosts)
	case o.Listeners < 1 || o.Listeners > 10000:
		return fmt.Errorf("--listeners %d: want 1 to 10000 per host", o.Listeners)
	case o.Samples < 1 || o.Samples > 10000:
		return fmt.Errorf("--samples %d: want 1 to 10000", o.Samples)
	case o.FullRouters < 1 || o.FullRouters > 100:
		return fmt.Errorf("--full-routers %d: want 1 to 100", o.FullRouters)
	case o.EtcdMembers != 1 && o.EtcdMembers != 3:
		return fmt.Errorf("--etcd-members %d: want 1 or 3", o.EtcdMembers)
	case o.TTL < 2*time.Second:
		return fmt.Errorf("--ttl %v: at least 2s", o.TTL)
	}
	return nil
}

// hostBits is the smallest host subnet length of 198.19.0.0/16 with room
// for every router of the run (and at most /26: 61 container addresses).
func (o Options) hostBits() int {
	bits := 16
	for 1<<(bits-16) < o.Hosts+o.FullRouters+2 {
		bits++
	}
	return max(bits, 24)
}
