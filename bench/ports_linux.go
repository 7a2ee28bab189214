package bench

import (
	"fmt"
	"os"

	"github.com/slimnet/slim/lab"
)

// ephemeralPorts reads a node's ephemeral port range
// (net.ipv4.ip_local_port_range in its namespace).
func ephemeralPorts(node lab.Node) (low, high int, err error) {
	var data []byte
	err = node.Do(func() (err error) {
		data, err = os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("reading the ephemeral port range of %s: %w", node.Name, err)
	}
	return parsePortRange(data)
}

// parsePortRange parses ip_local_port_range: "LOW\tHIGH\n".
func parsePortRange(data []byte) (low, high int, err error) {
	if _, err := fmt.Sscan(string(data), &low, &high); err != nil || low < 1 || high > 65535 || low > high {
		return 0, 0, fmt.Errorf("ip_local_port_range %q: want two ports, low then high", data)
	}
	return low, high, nil
}
