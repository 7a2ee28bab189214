// Package secure holds slim's secure mode (docs/secure.md): eBPF programs
// on the router's own cgroup that guard the host sockets it hands to
// containers, the SYN MAC that authenticates accelerated connections, and
// the policy check, also attached to containers' cgroups.
//
// Probe says what the running kernel offers; Load loads the programs
// (embedded by bpf2go, sources in secure/bpf/) with their maps pinned on a
// bpffs, and the Datapath methods attach them and fill their maps. Cgroups
// manages the router's and the containers' cgroup v2 directories.
// ClusterKey derives the keys of the SYN MAC and of the routers' peer
// channel from the cluster key file; SynMAC is the MAC in Go.
package secure
