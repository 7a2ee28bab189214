package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/policy"
)

func init() {
	register(&command{
		name:    "policy",
		summary: "list, add and delete the connection policy of a secure router",
		run:     runPolicy,
	})
}

const policyDescription = `
Shows and changes the connection policy of a router in secure mode
(slim router --secure), through its control API (docs/control.md), which
only root (or the router's --control-group) may use.

Subcommands:
  list [--json]           the rules in order, with the connections each matched
  add [--at N] RULE...    add a rule at position N (default: at the end)
  del N                   delete the rule at position N

A rule reads:

  allow|deny [from container NAME | from CIDR] [to CIDR] [port P[-Q]]

such as 'deny from 198.19.2.0/24 to 198.19.1.0/24 port 5432'. A missing
"from", "to" or "port" matches anything. The first rule that matches a
connection decides; a connection no rule matches is allowed. Positions
start at 1. A policy holds at most 4096 rules; a change is made whole or
not at all. The router saves the rules in DIR/policy.json before it
answers, and keeps them across restarts. A router on etcd (a "cluster"
section in its config) changes the cluster's policy, stored once in etcd,
which every secure router of the cluster enforces (docs/cluster.md).

Each subcommand takes --control PATH, --router-dir DIR or --lab NAME
[--host H] to select the router, as slim status does.`

// policyTimeout bounds one policy request (a change includes saving the
// rules and applying them).
const policyTimeout = 10 * time.Second

func runPolicy(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want a subcommand: list, add or del", errUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fs := newFlagSet("policy", "list|add|del [flags] [ARGS]", policyDescription)
		return parseFlags(fs, []string{"--help"})
	case "list", "ls":
		return runPolicyList(args[1:])
	case "add":
		return runPolicyAdd(args[1:])
	case "del", "delete", "rm":
		return runPolicyDel(args[1:])
	default:
		return fmt.Errorf("%w: unknown policy subcommand %q (want list, add or del)", errUsage, args[0])
	}
}

const policyTargetSynopsis = "[--control PATH | --router-dir DIR | --lab NAME [--host H]]"

func runPolicyList(args []string) error {
	fs := newFlagSet("policy list", policyTargetSynopsis+" [--json]", "Lists the policy rules in order with their hits (connections matched).")
	target := controlFlags(fs)
	asJSON := fs.Bool("json", false, "print the rules as the control API's JSON")
	if err := parseNoArguments(fs, args); err != nil {
		return err
	}
	return withPolicyClient(fs, target, func(ctx context.Context, c *control.Client) error {
		rules, err := c.PolicyList(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			if rules == nil {
				rules = []control.PolicyRule{}
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rules)
		}
		return writePolicy(os.Stdout, rules)
	})
}

func runPolicyAdd(args []string) error {
	fs := newFlagSet("policy add", "[--at N] "+policyTargetSynopsis+" RULE...", "Adds a rule at position N (1 is the first), or at the end.\n\n"+
		"RULE: allow|deny [from container NAME | from CIDR] [to CIDR] [port P[-Q]]")
	target := controlFlags(fs)
	at := fs.Int("at", 0, "insert the rule at position `N` (1 is the first; default: at the end)")
	words, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	text, err := policyRuleArgs(words)
	if err != nil {
		return err
	}
	if set := flagSet(fs, "at"); set && *at < 1 {
		return fmt.Errorf("%w: --at %d: positions start at 1", errUsage, *at)
	}
	return withPolicyClient(fs, target, func(ctx context.Context, c *control.Client) error {
		position, rules, err := c.PolicyAdd(ctx, text, *at)
		if err != nil {
			return policyChangeError(err)
		}
		fmt.Fprintf(os.Stdout, "added rule %d\n", position)
		return writePolicy(os.Stdout, rules)
	})
}

// policyRuleArgs joins the arguments into a rule and checks it here, so
// that a mistake is told without a round trip to the router.
func policyRuleArgs(words []string) (string, error) {
	if len(words) == 0 {
		return "", fmt.Errorf("%w: add needs a RULE, such as: deny from 198.19.2.0/24 to 198.19.1.0/24 port 5432", errUsage)
	}
	text := strings.Join(words, " ")
	if _, err := policy.Parse(text); err != nil {
		return "", fmt.Errorf("%w: %v", errUsage, err)
	}
	return text, nil
}

func runPolicyDel(args []string) error {
	fs := newFlagSet("policy del", policyTargetSynopsis+" N", "Deletes the rule at position N (1 is the first; see slim policy list).")
	target := controlFlags(fs)
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: del needs one argument, the position of the rule to delete (see slim policy list)", errUsage)
	}
	position, err := strconv.Atoi(rest[0])
	if err != nil || position < 1 {
		return fmt.Errorf("%w: %q is not a rule position: give a number from 1 (see slim policy list)", errUsage, rest[0])
	}
	return withPolicyClient(fs, target, func(ctx context.Context, c *control.Client) error {
		rules, err := c.PolicyDel(ctx, position)
		if err != nil {
			return policyChangeError(err)
		}
		fmt.Fprintf(os.Stdout, "deleted rule %d\n", position)
		return writePolicy(os.Stdout, rules)
	})
}

// parseInterspersed parses flags before, between and after the other
// arguments and returns the others. A word such as "-1" is an argument
// (so that "port -1" is told what a port is), unless it is a flag's value
// ("--at -1").
// parseNoArguments parses the flags of a command that takes no argument.
func parseNoArguments(fs *flag.FlagSet, args []string) error {
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
	}
	return nil
}

func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for len(args) > 0 {
		if isNegativeNumber(args[0]) {
			rest, args = append(rest, args[0]), args[1:]
			continue
		}
		head, tail := splitBeforeNumber(fs, args)
		if err := parseFlags(fs, head); err != nil {
			return nil, err
		}
		if fs.NArg() > 0 {
			rest = append(rest, fs.Arg(0))
			args = slices.Concat(fs.Args()[1:], tail)
		} else {
			args = tail
		}
	}
	return rest, nil
}

// isNegativeNumber says whether a word is "-" and a digit, then anything.
func isNegativeNumber(word string) bool {
	return len(word) > 1 && word[0] == '-' && word[1] >= '0' && word[1] <= '9'
}

// splitBeforeNumber splits args before the first negative number that is
// not the value of the flag before it.
func splitBeforeNumber(fs *flag.FlagSet, args []string) (head, tail []string) {
	for i, word := range args {
		if isNegativeNumber(word) && (i == 0 || !takesValue(fs, args[i-1])) {
			return args[:i], args[i:]
		}
	}
	return args, nil
}

// takesValue says whether word is a flag of fs that takes the next word
// as its value.
func takesValue(fs *flag.FlagSet, word string) bool {
	name := strings.TrimLeft(word, "-")
	if name == word || strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	boolean, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !boolean.IsBoolFlag()
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// withPolicyClient connects to the selected router's control socket and
// runs f.
func withPolicyClient(fs *flag.FlagSet, target controlTarget, f func(context.Context, *control.Client) error) error {
	path, err := target.path(fs)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), policyTimeout)
	defer cancel()
	c, err := control.Dial(ctx, path)
	if err != nil {
		return unreachable(path, err)
	}
	defer c.Close()
	return f(ctx, c)
}

// unreachable explains a failure to connect to a control socket.
func unreachable(path string, err error) error {
	const hint = "is the router running? --control, --router-dir or --lab select another"
	switch {
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("cannot reach the router: %s does not exist (%s)", path, hint)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the router: nothing serves %s (%s)", path, hint)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("cannot reach the router: permission denied on %s: only root and the router's --control-group may use it", path)
	}
	return fmt.Errorf("cannot reach the router: %w", err)
}

// policyChangeError prints the rules an error reply carries (a change in
// force whose revocation of live connections failed) before returning the
// error.
func policyChangeError(err error) error {
	var re *control.ReplyError
	if errors.As(err, &re) && re.Policy != nil {
		writePolicy(os.Stdout, re.Policy)
	}
	return err
}

// writePolicy prints the rules as a table: position, rule, hits.
func writePolicy(w io.Writer, rules []control.PolicyRule) error {
	if len(rules) == 0 {
		_, err := fmt.Fprintln(w, "no rules: every connection is allowed")
		return err
	}
	posWidth, ruleWidth, hitsWidth := len("POS"), len("RULE"), len("HITS")
	for _, r := range rules {
		posWidth = max(posWidth, len(strconv.Itoa(r.Position)))
		ruleWidth = max(ruleWidth, len(r.Rule))
		hitsWidth = max(hitsWidth, len(strconv.FormatUint(r.Hits, 10)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%*s  %-*s  %*s\n", posWidth, "POS", ruleWidth, "RULE", hitsWidth, "HITS")
	for _, r := range rules {
		fmt.Fprintf(&b, "%*d  %-*s  %*d\n", posWidth, r.Position, ruleWidth, r.Rule, hitsWidth, r.Hits)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
