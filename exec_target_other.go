//go:build !linux

package main

import "errors"

var errExecNeedsLinux = errors.New("slim exec needs Linux (glibc's dynamic loader and LD_PRELOAD)")

func preloadBlocker(string) (string, error) { return "", errExecNeedsLinux }

func execProgram(execPlan) error { return errExecNeedsLinux }
