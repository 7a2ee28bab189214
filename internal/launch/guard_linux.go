package launch

import (
	"errors"
	"fmt"
	"os"

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

// guardIoctls puts this process, and so the program it execs next, under
// the ioctl guard when secure mode wants it. It leaves the goroutine
// locked to its thread: execProgram must follow on the same goroutine.
// The protection it returns (nil when the program is not guarded here)
// is what a secure router checks before it enrolls the program.
func guardIoctls(secureRouter bool, p *plan, program ioctlguard.Command) (*ioctlguard.Protection, error) {
	switch mode := os.Getenv(ioctlGuardEnv); mode {
	case "off":
		return nil, nil
	case "force":
	case "":
		if !secureRouter {
			return nil, nil
		}
	default:
		return nil, fmt.Errorf("%s=%q: want force, off or nothing", ioctlGuardEnv, mode)
	}
	protection, err := ioctlguard.Protect(program)
	switch {
	case errors.Is(err, ioctlguard.ErrSupervised) && os.Getenv(guardedEnv) == "1":
		return nil, nil // nested: the outer guard's filter covers the program
	case err != nil:
		return nil, fmt.Errorf("guard the program's socket ioctls (%s=off runs it without): %w", ioctlGuardEnv, err)
	}
	p.env = setenv(p.env, guardedEnv, "1")
	return protection, nil
}
