package router

import (
	"fmt"
	"strconv"
	"strings"
)

// portRange is an inclusive range of TCP ports.
type portRange struct{ lo, hi uint16 }

// clientBindPorts is where a container may bind a fresh pool socket in
// secure mode (its app bound the same port in the container): the largest
// run of the host's ephemeral range (ip_local_port_range) that holds no
// reserved port (ip_local_reserved_ports) and none of the router's own
// ports (the peer port, the metrics port).
// Those are ports the kernel hands out to outgoing connections anyway, so
// no host service may count on them: a pool socket bound there, even made
// to listen, takes no service's port. It is empty (0..0) when no such run
// exists, and every bind is refused.
func clientBindPorts(localRange, reserved string, own ...uint16) (portRange, error) {
	eph, err := parseLocalPortRange(localRange)
	if err != nil {
		return portRange{}, err
	}
	taken, err := parsePortList(reserved)
	if err != nil {
		return portRange{}, err
	}
	for _, port := range own {
		taken[port] = true
	}
	eph.lo = max(eph.lo, 1024)
	var best, run portRange // lo 0: none (every port here is at least 1024)
	for p := int(eph.lo); p <= int(eph.hi); p++ {
		port := uint16(p)
		switch {
		case taken[port]:
			run = portRange{}
			continue
		case run.lo == 0:
			run = portRange{port, port}
		default:
			run.hi = port
		}
		if best.lo == 0 || run.hi-run.lo > best.hi-best.lo {
			best = run
		}
	}
	return best, nil
}

// parseLocalPortRange reads net.ipv4.ip_local_port_range ("32768\t60999").
func parseLocalPortRange(s string) (portRange, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return portRange{}, fmt.Errorf("ip_local_port_range %q: want two ports", s)
	}
	lo, err1 := strconv.ParseUint(f[0], 10, 16)
	hi, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || lo > hi {
		return portRange{}, fmt.Errorf("ip_local_port_range %q: want two ports, the lower first", s)
	}
	return portRange{uint16(lo), uint16(hi)}, nil
}

// parsePortList reads net.ipv4.ip_local_reserved_ports ("8080,9000-9010").
func parsePortList(s string) (map[uint16]bool, error) {
	ports := map[uint16]bool{}
	for _, item := range strings.Split(strings.TrimSpace(s), ",") {
		if item == "" {
			continue
		}
		first, last, isRange := strings.Cut(item, "-")
		if !isRange {
			last = first
		}
		lo, err1 := strconv.ParseUint(first, 10, 16)
		hi, err2 := strconv.ParseUint(last, 10, 16)
		if err1 != nil || err2 != nil || lo > hi {
			return nil, fmt.Errorf("ip_local_reserved_ports: %q is not a port or a range of ports", item)
		}
		for p := lo; p <= hi; p++ {
			ports[uint16(p)] = true
		}
	}
	return ports, nil
}
