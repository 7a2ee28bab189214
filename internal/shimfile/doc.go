// Package shimfile puts the embedded shim on disk where the dynamic loader
// can preload it: a content-addressed, world-readable file written
// atomically, verified and repaired when it is reused.
package shimfile
