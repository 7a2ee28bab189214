package launch

import (
	"fmt"
	"os"

	"github.com/slimnet/slim/secure/ioctlguard"
)

// Options are slim exec's settings after its flags and environment.
type Options struct {
	ShimDir    string             // where the shim file is installed
	RouterSock string             // the router's socket
	Guard      ioctlguard.Command // how to start the ioctl guard (this binary)
}

// Run replaces this process with args[0] run with the shim preloaded when
// it can be, guarded and enrolled when the router runs in secure mode. It
// returns only on failure.
func Run(opts Options, args []string) error {
	p, err := newPlan(opts, args, os.Environ())
	if err != nil {
		return err
	}
	// One HELLO decides both: a secure router wants the program guarded,
	// then enrolls it (after checking the guard); any other needs neither.
	secureRouter := routerSecure(opts.RouterSock)
	protection, err := protect(secureRouter, &p, opts)
	if err != nil {
		return err
	}
	if p.notice != "" {
		fmt.Fprintln(os.Stderr, p.notice)
	}
	if secureRouter {
		enroll(opts.RouterSock, protection)
	}
	if link := p.dialerLink; link >= 0 {
		// Enrolled: the dialer starts in the program's cgroup, under its
		// filter. Without it a router restart leaves the program on the
		// overlay. startDialer closes the link.
		p.dialerLink = -1
		if err := startDialer(link, opts.RouterSock); err != nil {
			fmt.Fprintf(os.Stderr, "slim exec: %v; after a router restart the program uses the overlay\n", err)
		}
	}
	if protection != nil {
		protection.Close()
	}
	return execProgram(p)
}
