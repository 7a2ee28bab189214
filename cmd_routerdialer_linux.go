package main

import (
	"fmt"
	"os"

	"github.com/slimnet/slim/internal/launch"
)

// The hidden subcommand that runs the router dialer of a supervised
// program in secure mode (internal/launch/dialer_linux.go): slim exec
// starts it; it is dispatched here, before main, and slim help does not
// list it.
func init() {
	if len(os.Args) < 2 || os.Args[1] != launch.DialerCommand {
		return
	}
	if err := launch.DialerMain(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "slim %s: %v\n", launch.DialerCommand, err)
		os.Exit(1)
	}
	os.Exit(0)
}
