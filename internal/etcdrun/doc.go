// Package etcdrun runs etcd members (Debian's etcd-server, /usr/bin/etcd)
// for labs, tests and benchmarks: it builds their command lines with
// mutual TLS between members and towards clients, starts them in a
// network namespace the caller chooses, and stops them. Members listen on
// one address each (a lab's wire, 198.18.0.0/16), never on loopback.
package etcdrun
