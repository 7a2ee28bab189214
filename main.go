// Command slim is a low-overhead container overlay network: a per-host
// router hands containers real host TCP sockets, a preloaded shim swaps them
// in under the application's file descriptors, and a VXLAN overlay carries
// addressing, fallback and everything that is not accelerated.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/slimnet/slim/cni"
	"github.com/slimnet/slim/oci"
)

// command is one subcommand of slim.
type command struct {
	name    string
	summary string
	// run executes the command with the arguments after its name. It
	// returns errUsage (possibly wrapped) when the arguments are wrong.
	run func(args []string) error
}

// commands is filled by the init functions of the cmd_*.go files.
var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// errUsage marks errors caused by bad command-line arguments; main prints
// them with a hint and exits 2.
var errUsage = errors.New("usage")

func main() {
	if cniInvoked(os.Args[1:]) { // cmd_cni.go
		os.Exit(cni.Main(cniAbout()))
	}
	if runtimeInvoked() { // cmd_runtime.go
		os.Exit(oci.Main(os.Args[1:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "slim: unknown command %q\n", name)
		fmt.Fprintf(stderr, "Run 'slim help' for the list of commands.\n")
		return 2
	}
	err := cmd.run(args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "slim %s: %v\nRun 'slim %s --help' for usage.\n", name, err, name)
		return 2
	default:
		fmt.Fprintf(stderr, "slim %s: %v\n", name, err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: slim COMMAND [ARGS]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'slim COMMAND --help' for a command's flags.\n")
}

// newFlagSet returns a flag set for a subcommand whose --help text starts
// with the given usage line and description.
func newFlagSet(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet("slim "+name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: slim %s %s\n\n%s\n", name, synopsis, strings.TrimSpace(description))
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintf(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args. --help prints the usage text on stdout; any
// other flag error becomes a usage error for main to print.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(os.Stdout)
		fs.Usage()
		return err
	default:
		return fmt.Errorf("%w: %v", errUsage, err)
	}
}
