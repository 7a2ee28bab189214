package etcd

import (
	"context"
	"errors"
	"sync"
	"time"
)

// health follows whether etcd answers.
type health struct {
	mu        sync.Mutex
	connected bool
	since     time.Time
	lastError string
	errorAt   time.Time
	resyncs   int
	// Times of the last write, state sent (watch or read) and lease
	// renewal that succeeded.
	lastWrite, lastWatch, lastRenewal time.Time
}

// ok records an answer from etcd.
func (h *health) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.connected {
		h.connected, h.since = true, time.Now()
	}
}

// wrote, watched and renewed record an answer from etcd of their kind.
func (h *health) wrote()   { h.answered(&h.lastWrite) }
func (h *health) watched() { h.answered(&h.lastWatch) }
func (h *health) renewed() { h.answered(&h.lastRenewal) }

func (h *health) answered(at *time.Time) {
	h.ok()
	h.mu.Lock()
	defer h.mu.Unlock()
	*at = time.Now()
}

// failed records a call that failed for want of etcd (a timeout, no
// connection, no leader); a store that is closing records nothing.
func (h *health) failed(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.connected {
		h.connected, h.since = false, time.Now()
	}
	h.lastError, h.errorAt = err.Error(), time.Now()
}

// problem records an error that says nothing about the connection (a
// record refused, a subnet lost).
func (h *health) problem(msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastError, h.errorAt = msg, time.Now()
}

func (h *health) resynced() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.resyncs++
}
