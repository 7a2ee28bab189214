package main

import (
	"os"
	"path/filepath"

	"github.com/slimnet/slim/oci"
)

func init() {
	register(&command{
		name:    "oci-runtime",
		summary: "the OCI runtime wrapper engines run in place of runc (installed as slim-runc; docs/oci.md)",
		run:     func(args []string) error { os.Exit(oci.Main(args)); return nil },
	})
	register(&command{
		name:    "oci-hook",
		summary: "the OCI hooks the runtime wrapper adds: attach|detach a container to Slim's network",
		run:     func(args []string) error { os.Exit(oci.HookMain(args, os.Stdin)); return nil },
	})
}

// runtimeInvoked says whether an engine runs slim as its OCI runtime: the
// binary is named slim-runc (a symbolic link to slim).
func runtimeInvoked() bool { return filepath.Base(os.Args[0]) == "slim-runc" }
