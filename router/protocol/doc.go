// Package protocol encodes and decodes the messages between the shim and
// the router, the preamble of accelerated connections, and the directory
// snapshots and client lists routers exchange. docs/protocol.md is the normative description;
// this package and the C shim both follow it.
//
// Decoding never trusts a length or a count: every message is checked
// against the bytes actually received, and anything malformed becomes an
// error that says what was wrong, never a panic.
package protocol

//go:generate go run ../../internal/cmd/wiregen -o ../../preload/wire.h
