// Package storescale is the scale benchmark of the etcd cluster store
// (slim bench --store-scale): N simulated routers in one process, each a
// real cluster/etcd store with its own connection, against a real etcd
// (Debian's etcd-server) in a scratch network namespace. It reports the
// time from a listener's publication on one router to its entry being in
// every router's view, etcd writes and watch events per new listener, a
// router's memory with the whole directory, and the directory table's
// lookup time at that size.
//
// Each simulated router watches the cluster prefix on its own connection,
// so etcd does the fan-out of a real cluster of that size. Decoding every
// event into a full state in every simulated router would need the CPU and
// memory of that many hosts in one process, so only a subset (the "full
// routers") run the whole store; the others record when the event reached
// them. A separate probe process holds one router's state and directory
// table for the memory figure.
package storescale
