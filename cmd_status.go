package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/slimnet/slim/control"
)

func init() {
	register(&command{
		name:    "status",
		summary: "print a one-shot summary of the router",
		run:     runStatus,
	})
}

const statusDescription = `
Prints a short summary of a router from its control API: health, cluster
store (on etcd: connected or not, last write, watch and lease renewal,
listeners waiting to be published), peers,
containers with their accelerated sockets, listeners, connection totals
and what shims reported. 'slim top' shows the same live.`

func runStatus(args []string) error {
	fs := newFlagSet("status", "[--control PATH | --router-dir DIR | --lab NAME [--host H]]", statusDescription)
	target := controlFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	path, err := target.path(fs)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snap, err := control.Fetch(ctx, path)
	if err != nil {
		return err
	}
	return writeStatus(os.Stdout, snap)
}

// writeStatus prints the summary of a snapshot.
func writeStatus(w io.Writer, s control.Snapshot) error {
	r := s.Router
	fmt.Fprintf(w, "router   %s (%s), slim %s, up %s\n", r.Host, r.Subnet, r.Version, r.Uptime.Round(time.Second))
	if r.Secure != nil {
		e := *r.Secure
		fmt.Fprintf(w, "secure   on: %d SYNs verified, %d dropped; refused %d connects by policy, %d other connects, %d binds, %d options\n",
			e["syn_verified"], e["syn_dropped"], e["policy_denied"], e["connect_refused"], e["bind_refused"], e["sockopt_refused"])
	}
	if r.InsecurePeers {
		fmt.Fprintf(w, "INSECURE the directory exchange with peer routers is not authenticated (insecure_peers, no cluster key): any user on a peer host can redirect connections\n")
	}
	if r.Store != nil {
		writeStoreHealth(w, s.Time, *r.Store)
	}
	if r.SweepErr != "" {
		fmt.Fprintf(w, "         cannot list host sockets: %s\n", r.SweepErr)
	}
	for _, p := range s.Peers {
		state := "disconnected"
		if p.Connected {
			state = "connected"
		}
		last := "never"
		if !p.LastDirectory.IsZero() {
			last = s.Time.Sub(p.LastDirectory).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(w, "peer     %s (%s): %s, directory received %s, %d listeners\n", p.Host, p.Subnet, state, last, p.Listeners)
	}
	for _, c := range s.Containers {
		fmt.Fprintf(w, "container %s %s: %d accelerated sockets (%d connections, %d listeners), %d of %d host sockets held",
			c.Name, c.Addr, c.FDs(), c.Connections, c.Listeners, c.PoolSockets, c.PoolQuota)
		if c.PoolRefused > 0 {
			fmt.Fprintf(w, " (%d requests refused for the quota)", c.PoolRefused)
		}
		fmt.Fprintln(w)
	}
	for _, l := range s.Listeners {
		fmt.Fprintf(w, "listener %s %s on host %s\n", l.Container, l.Overlay, l.Host)
	}
	var in, out uint64
	for _, c := range s.Connections {
		in += c.BytesIn
		out += c.BytesOut
	}
	fmt.Fprintf(w, "connections %d established, %d bytes in, %d bytes out\n", len(s.Connections)+s.ConnectionsTruncated, in, out)
	if s.Shims.Reports == 0 {
		fmt.Fprintf(w, "shims    no data from shims yet\n")
	} else {
		fmt.Fprintf(w, "shims    %d reports, %d setups (%.1f/s), %d fallbacks %v\n", s.Shims.Reports, s.Shims.Setups(), s.Shims.SetupsPerSecond, s.Shims.TotalFallbacks(), s.Shims.Fallbacks)
	}
	if s.Shims.Refused > 0 || s.Shims.Discarded > 0 {
		fmt.Fprintf(w, "         %d reports refused, %d reported counts not credited (beyond what the containers took)\n", s.Shims.Refused, s.Shims.Discarded)
	}
	_, err := fmt.Fprintf(w, "policy   %d rules\n", len(s.Policy))
	return err
}
