package launch

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/supervise"
	"github.com/slimnet/slim/secure/ioctlguard"
)

// ioctlGuardEnv says when slim exec puts the program under the ioctl
// guard (docs/secure.md): unset or empty, when the router runs in secure
// mode; "force", always; "off", never.
const ioctlGuardEnv = "SLIM_IOCTL_GUARD"

// guardedEnv marks a program put under the guard, so that a nested slim
// exec, which the kernel refuses a second listener, knows that the outer
// guard covers it.
const guardedEnv = "SLIM_IOCTL_GUARDED"

// wantIoctlGuard says whether the program's socket ioctls are to be
// guarded.
func wantIoctlGuard(secureRouter bool) (bool, error) {
	switch mode := os.Getenv(ioctlGuardEnv); mode {
	case "off":
		return false, nil
	case "force":
		return true, nil
	case "":
		return secureRouter, nil
	default:
		return false, fmt.Errorf("%s=%q: want force, off or nothing", ioctlGuardEnv, mode)
	}
}

// protect puts this process, and so the program it execs next, under the
// guard's filter when secure mode wants its ioctls guarded or the
// supervisor is to accelerate it (p.supervise). It leaves the goroutine
// locked to its thread: execProgram must follow on the same goroutine.
// The protection it returns (nil when the program is not under a filter
// of its own) is what a secure router checks before it enrolls the
// program. When the supervisor cannot take the program, p.notice says why.
func protect(secureRouter bool, p *plan, opts Options) (*ioctlguard.Protection, error) {
	ioctls, err := wantIoctlGuard(secureRouter)
	if err != nil {
		return nil, err
	}
	sockets := p.supervise
	if sockets && secureRouter && !ioctls {
		// Not enrolled without the guard: no host sockets to hand out.
		sockets = false
		p.unaccelerated(ioctlGuardEnv + "=off")
	}
	if sockets {
		if missing := supervise.MissingFeature(); missing != "" {
			sockets = false
			p.unaccelerated("the kernel lacks " + missing)
		}
	}
	if !ioctls && !sockets {
		return nil, nil
	}
	protection, err := protectWith(opts, secureRouter, ioctls, sockets, p)
	if errors.Is(err, ioctlguard.ErrNoWaitKillable) {
		p.unaccelerated(err.Error())
		sockets = false
		if !ioctls {
			return nil, nil
		}
		protection, err = protectWith(opts, secureRouter, ioctls, false, p)
	}
	switch {
	case errors.Is(err, ioctlguard.ErrSupervised) && os.Getenv(guardedEnv) == "1":
		if sockets {
			p.unaccelerated("an outer slim exec's ioctl guard already watches it (the kernel allows one supervisor)")
		}
		return nil, nil // nested: the outer guard's filter covers the program
	case err != nil && !ioctls && !underFilter():
		p.unaccelerated(err.Error())
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("guard the program's socket ioctls (%s=off runs it without): %w", ioctlGuardEnv, err)
	}
	if protection.Warning != "" {
		p.notice = protection.Warning
	}
	if ioctls {
		p.env = setenv(p.env, guardedEnv, "1")
	}
	if sockets {
		p.env = setenv(p.env, socketsSupervisedEnv, "1")
	}
	return protection, nil
}

// protectWith installs the filter: ioctls guarded, sockets supervised. In
// secure mode it keeps in p the dialer's end of the link it hands the
// supervisor (dialer_linux.go).
func protectWith(opts Options, secureRouter, ioctls, sockets bool, p *plan) (*ioctlguard.Protection, error) {
	p.dropDialerLink()
	o := ioctlguard.Options{Ioctls: ioctls}
	if sockets {
		cfg := supervise.Config{
			RouterSock: opts.RouterSock,
			Secure:     secureRouter,
			TimeoutMS:  int(routerTimeout().Milliseconds()),
			Debug:      os.Getenv("SLIM_DEBUG") != "",
		}
		if secureRouter {
			// The router answers POOL and LISTEN only to the enrolled
			// program: the supervisor asks on connections this
			// process (the program to be) makes.
			o.Files = dialRouter(opts.RouterSock, 2)
			defer closeFiles(o.Files)
			// And a link to the dialer, which connects again
			// should these connections end (a router restart).
			if link, err := newDialerLink(); err == nil {
				o.Files = append(o.Files, link[0])
				p.dialerLink = link[1]
				cfg.Dialer = true
			}
		}
		o.Traps, o.Config = supervise.Traps(secureRouter), cfg.Encode()
	}
	protection, err := ioctlguard.Protect(opts.Guard, o)
	if err != nil {
		p.dropDialerLink()
	}
	return protection, err
}

// dropDialerLink closes the dialer's end of a link no dialer is to have.
func (p *plan) dropDialerLink() {
	if p.dialerLink >= 0 {
		unix.Close(p.dialerLink)
	}
	p.dialerLink = -1
}

// unaccelerated notes in p that the supervisor cannot take the program.
func (p *plan) unaccelerated(why string) {
	p.notice = fmt.Sprintf("slim exec: %s; %s: running it unaccelerated over the overlay", p.blocked, why)
}

// underFilter reports whether this thread is under a seccomp filter: a
// filter left without its guard would fail the program's trapped calls.
func underFilter() bool {
	status, err := os.ReadFile("/proc/thread-self/status")
	return err != nil || strings.Contains(string(status), "\nSeccomp:\t2\n")
}
