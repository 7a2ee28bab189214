// Package cluster is where a router's cluster state comes from: which
// hosts there are (their underlay addresses and overlay subnets), where
// every accelerated listener of the cluster is (the directory), and the
// cluster's policy.
//
// A Store is one source of that state. Two exist:
//
//   - Static (this package): today's behaviour. The configuration lists
//     every host; the directory reaches peers over the routers' own
//     full-mesh exchange, which feeds it back with SetListeners; the
//     policy is this router's alone.
//   - cluster/etcd: hosts join by claiming a subnet in etcd under a lease
//     they keep alive, publish their listeners there (one key per host),
//     and watch the whole cluster with one watch. docs/cluster.md has the
//     key layout, leases, watches and failure behaviour.
//
// A store built on the Kubernetes API would fit the same interface: a
// host's member record is its Node (spec.podCIDR as the subnet, the
// underlay address in an annotation), its listeners one object per node
// (an annotation or a small custom resource, batched like etcd's one key
// per host), the policy one object, and the watch an informer on those.
//
// Whatever the backend does, a Store serves its state from memory: State
// never waits on the backend, PublishListeners returns at once and
// publishes in the background (retrying until it succeeds), so that no
// call on an application's path waits on etcd.
package cluster
