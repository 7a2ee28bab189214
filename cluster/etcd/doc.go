// Package etcd keeps a Slim cluster's state in etcd (go.etcd.io/etcd
// client v3, mutual TLS): hosts claim a subnet with a transaction under
// a lease they keep alive, publish their member record and their list of
// accelerated listeners (one key per host) under a shorter lease, and
// follow the whole cluster with one watch of the prefix, resumed by
// revision and re-read after a compaction. The cluster's policy is one
// key, changed by compare-and-swap transactions.
//
// docs/cluster.md describes the key layout, the leases, the watch and
// what happens when etcd is unreachable: the store keeps serving the
// last state it saw and retries what it could not publish.
package etcd
