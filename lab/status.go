package lab

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// PrintStatus writes a table of the lab's hosts and containers.
func (l *Lab) PrintStatus(w io.Writer) error {
	containers := 0
	for _, h := range l.Hosts {
		containers += len(h.Containers)
	}
	fmt.Fprintf(w, "lab %s: %d hosts, %d containers; wire %s, overlay %s\n", l.Name, len(l.Hosts), containers, WireCIDR, OverlayCIDR)
	if l.IPv6.IsValid() {
		fmt.Fprintf(w, "IPv6 overlay %s (a container's IPv6 address: the prefix plus its IPv4 one; the wire is IPv4)\n", l.IPv6)
	}
	if l.Store != "" {
		fmt.Fprintf(w, "cluster store: %s, %d members (certificates in %s)\n", l.Store, len(l.Etcd), l.EtcdDir())
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tNETNS\tADDRESS\tOVERLAY")
	for _, h := range l.Hosts {
		fmt.Fprintf(tw, "%s\thost\t%s\t%s\t%s\n", h.Name, h.Netns, h.Wire, h.Subnet)
		for _, c := range h.Containers {
			addr := c.Addr.String()
			if v6, err := l.IPv6Of(c.Name); err == nil {
				addr += " " + v6.String()
			}
			fmt.Fprintf(tw, "%s\tcontainer\t%s\t%s\t-\n", c.Name, c.Netns, addr)
		}
	}
	for _, m := range l.Etcd {
		fmt.Fprintf(tw, "%s\tetcd\t%s\t%s\t-\n", m.Name, m.Netns, m.Addr)
	}
	return tw.Flush()
}
