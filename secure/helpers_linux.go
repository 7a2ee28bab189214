package secure

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
)

// ProbeHelpers checks the BPF helpers the programs call beyond the
// program types Probe checks, naming each one the kernel lacks.
func ProbeHelpers() error {
	needs := []struct {
		program ebpf.ProgramType
		helper  asm.BuiltinFunc
		what    string
	}{
		{ebpf.CGroupSockAddr, asm.FnLoop, "the bpf_loop helper (Linux 5.17), which walks a policy of thousands of rules"},
		{ebpf.CGroupSock, asm.FnGetSocketCookie, "bpf_get_socket_cookie in cgroup sock programs, which tells when the host sockets the router made are all closed"},
	}
	var errs []error
	for _, n := range needs {
		err := features.HaveProgramHelper(n.program, n.helper)
		switch {
		case err == nil:
		case errors.Is(err, ebpf.ErrNotSupported):
			errs = append(errs, fmt.Errorf("this kernel lacks %s", n.what))
		default:
			errs = append(errs, fmt.Errorf("probing %s: %w", n.what, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("secure mode cannot start: %w", errors.Join(errs...))
	}
	return nil
}
