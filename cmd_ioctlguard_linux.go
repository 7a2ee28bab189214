package main

import (
	"fmt"
	"os"

	"github.com/slimnet/slim/internal/launch"
	"github.com/slimnet/slim/internal/supervise"
	"github.com/slimnet/slim/secure/ioctlguard"
)

// ioctlGuardCommand is the hidden subcommand that runs the guard process
// of secure mode's ioctl filter (secure/ioctlguard): `slim exec` starts it
// as `slim __ioctl-guard STAGE`. It is not meant to be run by hand, so it
// is dispatched here, before main, and slim help does not list it.
const ioctlGuardCommand = "__ioctl-guard"

// ioctlGuardProgram is how slim exec starts the guard: this very binary.
var ioctlGuardProgram = ioctlguard.Command{Path: "/proc/self/exe", Args: []string{ioctlGuardCommand}}

// launchOptions are slim exec's options with the guard this binary runs.
func launchOptions(shimDir string) launch.Options {
	return launch.Options{ShimDir: shimDir, Guard: ioctlGuardProgram}
}

func init() {
	if len(os.Args) < 2 || os.Args[1] != ioctlGuardCommand {
		return
	}
	stage := ""
	if len(os.Args) == 3 {
		stage = os.Args[2]
	}
	// The guard's stderr is /dev/null unless SLIM_DEBUG is set.
	if err := ioctlguard.Main(ioctlGuardProgram, stage, supervise.Setup); err != nil {
		fmt.Fprintf(os.Stderr, "slim %s: %v\n", ioctlGuardCommand, err)
		os.Exit(1)
	}
	os.Exit(0)
}
