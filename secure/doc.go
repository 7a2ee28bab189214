// Package secure holds slim's secure mode: eBPF programs attached to the
// containers' cgroups that check every connection a container makes, so that
// an accelerated (host-socket) connection obeys the same policy as one over
// the overlay.
//
// For now the package probes what the running kernel offers (Probe) and
// finds the cgroup v2 and bpffs mounts; the BPF sources live in secure/bpf/
// and are compiled into package embed by `make generate`.
package secure
