package oci

import (
	"strings"
)

// runcValueFlags are runc's global flags that take a value.
var runcValueFlags = map[string]bool{"log": true, "log-format": true, "root": true, "criu": true, "rootless": true}

// invocation is an OCI runtime command line, as engines write it:
// global flags, a command, then the command's flags and arguments.
type invocation struct {
	args    []string // everything, as given
	command string   // "create", "run", "exec", …; "" if none
	at      int      // index of command in args
}

func parseInvocation(args []string) invocation {
	inv := invocation{args: args, at: -1}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") {
			inv.command, inv.at = arg, i
			return inv
		}
		name := strings.TrimLeft(arg, "-")
		if !strings.Contains(name, "=") && runcValueFlags[name] {
			i++ // its value
		}
	}
	return inv
}

// global returns the global flags (before the command).
func (inv invocation) global() []string {
	if inv.at < 0 {
		return inv.args
	}
	return inv.args[:inv.at]
}

// flag returns the value of the command's flag with one of the names
// (given without dashes: "bundle", "b"), as -name, --name, with "=" or
// as the next argument.
func (inv invocation) flag(names ...string) (string, bool) {
	if inv.at < 0 {
		return "", false
	}
	rest := inv.args[inv.at+1:]
	for i, arg := range rest {
		if !strings.HasPrefix(arg, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		for _, want := range names {
			if name != want {
				continue
			}
			if hasValue {
				return value, true
			}
			if i+1 < len(rest) {
				return rest[i+1], true
			}
		}
	}
	return "", false
}

// lastArg is the command's last argument: the container ID of create,
// run and exec without a command line after it (engines pass --process).
func (inv invocation) lastArg() string {
	if inv.at < 0 || inv.at == len(inv.args)-1 {
		return ""
	}
	return inv.args[len(inv.args)-1]
}
