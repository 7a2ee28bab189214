// Package pki makes the small certificate authorities that labs, tests
// and benchmarks give their etcd members and clients: an ECDSA P-256 CA,
// server certificates for IP addresses and client certificates whose
// common name is the user etcd's authentication sees. Keys are written
// readable by root only. It is not meant for production clusters, whose
// operators bring their own CA.
package pki
