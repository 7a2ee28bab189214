package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	prebuilt "github.com/slimnet/slim/embed"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func init() {
	register(&command{
		name:    "version",
		summary: "print the version of slim and of its embedded parts",
		run:     runVersion,
	})
}

func runVersion(args []string) error {
	fs := newFlagSet("version", "", "Prints slim's version, the Go toolchain it was built with, and the\ndigest of the embedded shim.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	commit := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	fmt.Printf("slim %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("shim sha256 %s\n", prebuilt.ShimDigest())
	return nil
}
