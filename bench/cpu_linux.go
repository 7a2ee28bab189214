package bench

import (
	"fmt"
	"os"
)

// readCPUBusy returns the busy time of the machine's CPUs so far, in
// clock ticks (see parseCPUBusy).
func readCPUBusy() (uint64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("reading CPU times: %w", err)
	}
	return parseCPUBusy(data)
}
