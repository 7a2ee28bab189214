package prebuilt

import (
	"crypto/sha256"
	_ "embed" // for go:embed
	"encoding/hex"
	"sync"
)

//go:embed libslim.so
var shim []byte

// Shim returns the shim shared object, libslim.so. Callers must not modify
// the returned slice.
func Shim() []byte { return shim }

// ShimDigest returns the hex-encoded SHA-256 of Shim().
func ShimDigest() string { return shimDigest() }

var shimDigest = sync.OnceValue(func() string {
	sum := sha256.Sum256(shim)
	return hex.EncodeToString(sum[:])
})
