package prebuilt

import _ "embed" // for go:embed

//go:embed slim-loadgen
var loadgen []byte

// Loadgen returns slim-loadgen, the open-loop load generator of
// `slim bench --fixed-load` (built by `make` from bench/loadgen/). It is
// a dynamically linked glibc executable, so that `slim exec` can preload
// the shim into it. Callers must not modify the returned slice.
func Loadgen() []byte { return loadgen }
