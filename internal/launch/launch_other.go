//go:build !linux

package launch

import "errors"

// Options are slim exec's settings after its flags and environment.
type Options struct {
	ShimDir    string
	RouterSock string
}

// Run fails: slim exec needs Linux.
func Run(Options, []string) error {
	return errors.New("slim exec needs Linux (glibc's dynamic loader and LD_PRELOAD)")
}
