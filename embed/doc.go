// Package prebuilt (folder embed/) carries the artifacts that are built outside Go and shipped
// inside the slim binary: the preloaded C shim (libslim.so, built by `make`
// from preload/), the bench's load generator (slim-loadgen, built by `make`
// from bench/loadgen/) and the eBPF objects compiled by bpf2go from secure/bpf/
// (`make generate`). The artifacts are committed so that `go build ./...`
// works on a clean clone without a C toolchain.
package prebuilt
