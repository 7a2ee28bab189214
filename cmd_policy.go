package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
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
start at 1. The router saves the rules in DIR/policy.json before it
answers, and keeps them across restarts.

Each subcommand takes --control PATH, --router-dir DIR or --lab NAME
[--host H] to select the router, as slim status does; flags go before
the rule.`

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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	text, err := policyRuleArgs(fs)
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
func policyRuleArgs(fs *flag.FlagSet) (string, error) {
	words := fs.Args()
	if len(words) == 0 {
		return "", fmt.Errorf("%w: add needs a RULE, such as: deny from 198.19.2.0/24 to 198.19.1.0/24 port 5432", errUsage)
	}
	for _, w := range words {
		if strings.HasPrefix(w, "-") {
			return "", fmt.Errorf("%w: %q after the rule: flags go before the rule", errUsage, w)
		}
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: del needs one argument, the position of the rule to delete (see slim policy list)", errUsage)
	}
	position, err := strconv.Atoi(fs.Arg(0))
	if err != nil || position < 1 {
		return fmt.Errorf("%w: %q is not a rule position: give a number from 1 (see slim policy list)", errUsage, fs.Arg(0))
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
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no router is serving %s (is it running? --control, --router-dir or --lab select another): %w", path, err)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("may not use %s: the control socket is root's (and the router's --control-group's): %w", path, err)
	}
	return err
}

// policyChangeError prints the rules an error reply carries (a change
// saved but not applied) before returning the error.
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
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "POS\t RULE\tHITS\t\n")
	for _, r := range rules {
		fmt.Fprintf(tw, "%d\t %s\t%d\t\n", r.Position, r.Rule, r.Hits)
	}
	return tw.Flush()
}
