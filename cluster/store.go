package cluster

import (
	"context"
	"errors"
)

// Store is where a router's cluster state comes from, and where it
// publishes its own part of it. Implementations are safe for concurrent
// use. Only Join, EditPolicy and Leave talk to the backend while the
// caller waits (bounded by their context); everything else answers from
// memory.
type Store interface {
	// Join makes this host a member of the cluster: it claims the
	// host's subnet (self.Subnet, or the one the host held before, or a
	// free one), publishes its member record, keeps both alive, and
	// starts following the cluster. The first State after Join is
	// complete (one read of the whole cluster).
	Join(ctx context.Context, self Self) (Member, error)

	// State is the latest state the store has seen and a channel closed
	// when a newer one replaces it. It never waits on the backend: with
	// the backend unreachable it is the last state seen.
	State() (*State, <-chan struct{})

	// PublishListeners makes listeners this host's whole list of
	// accelerated listeners. It returns at once with the list's
	// generation; the store publishes it in the background, coalescing
	// lists that follow each other quickly and retrying until the
	// backend has it.
	PublishListeners(listeners []Listener) uint64

	// WaitPublished waits until the backend has generation (or a later
	// one), or ctx ends.
	WaitPublished(ctx context.Context, generation uint64) error

	// EditPolicy changes the cluster's policy in one transaction: edit
	// gets the current rules (nil if none) and returns the new ones; it
	// is called again if another edit got in first. Every member sees the
	// result in its State.
	EditPolicy(ctx context.Context, edit func(current []byte) ([]byte, error)) (Policy, error)

	// Health says how the store is doing.
	Health() Health

	// Leave gives this host's place up: its records are deleted and its
	// subnet is free at once. The store is closed after it.
	Leave(ctx context.Context) error

	// Close stops the store without leaving: the host's records expire
	// after the lease's TTL unless a router with the same ID joins again,
	// and its subnet stays held for the grace period.
	Close() error
}

// Errors a store returns.
var (
	// ErrNotJoined: the call needs Join first.
	ErrNotJoined = errors.New("the host has not joined the cluster")
	// ErrClosed: the store was closed or left.
	ErrClosed = errors.New("cluster store closed")
	// ErrNoSubnet: every host subnet is held.
	ErrNoSubnet = errors.New("no free host subnet")
	// ErrSubnetTaken: the wanted subnet is held by another host.
	ErrSubnetTaken = errors.New("subnet held by another host")
	// ErrReadOnly: the store does not allow this change.
	ErrReadOnly = errors.New("not allowed by this store")
)
