package secure

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// MinKeySize is the fewest secret bytes a cluster key holds.
const MinKeySize = 32

// Labels of the keys derived from the cluster key, one per use.
const (
	peerKeyLabel = "slim peer channel v1"
	synKeyLabel  = "slim syn mac v1"
)

// ClusterKey is the secret every router of a cluster shares. Keys for each
// use are derived from it, so no two uses share a key.
type ClusterKey struct {
	secret []byte
}

// LoadClusterKey reads a cluster key from a file. Every byte of the file is
// secret (a trailing newline is harmless). It refuses a file that is not a
// regular file, that group or others may read, or that holds fewer than
// MinKeySize bytes.
func LoadClusterKey(path string) (*ClusterKey, error) {
	// Check before opening too: opening a FIFO would block.
	if err := checkKeyFile(path, os.Stat); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	defer f.Close()
	if err := checkKeyFile(path, func(string) (os.FileInfo, error) { return f.Stat() }); err != nil {
		return nil, err
	}
	secret, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	if len(secret) < MinKeySize {
		return nil, keyFileError(path, "holds %d bytes, fewer than %d; write %d random bytes to it (head -c %d /dev/urandom > %s)",
			len(secret), MinKeySize, MinKeySize, MinKeySize, path)
	}
	return &ClusterKey{secret: secret}, nil
}

// checkKeyFile refuses a key file that is not a regular file or whose mode
// lets group or others read it; stat says what the file is.
func checkKeyFile(path string, stat func(string) (os.FileInfo, error)) error {
	info, err := stat(path)
	if err != nil {
		return fmt.Errorf("cluster key: %w", err)
	}
	if !info.Mode().IsRegular() {
		return keyFileError(path, "is not a regular file (mode %v); point key_file at a file of random bytes", info.Mode())
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return keyFileError(path, "has mode %#o, which lets group or others read it; run chmod 600 %s", perm, path)
	}
	return nil
}

func keyFileError(path, format string, args ...any) error {
	return fmt.Errorf("cluster key %s "+format, append([]any{path}, args...)...)
}

// NewClusterKey makes a cluster key of the given secret, which must be at
// least MinKeySize bytes. The secret is copied.
func NewClusterKey(secret []byte) (*ClusterKey, error) {
	if len(secret) < MinKeySize {
		return nil, fmt.Errorf("cluster key of %d bytes is shorter than %d", len(secret), MinKeySize)
	}
	return &ClusterKey{secret: append([]byte(nil), secret...)}, nil
}

// derive returns HMAC-SHA256(secret, label).
func (k *ClusterKey) derive(label string) []byte {
	mac := hmac.New(sha256.New, k.secret)
	mac.Write([]byte(label))
	return mac.Sum(nil)
}

// PeerKey is the 32-byte key that authenticates the messages routers
// exchange on the peer channel (docs/protocol.md).
func (k *ClusterKey) PeerKey() []byte { return k.derive(peerKeyLabel) }

// SynKey is the SipHash-2-4 key of the MAC in accelerated connections' SYNs
// (SynMAC): the first 16 derived bytes as two little-endian words.
func (k *ClusterKey) SynKey() (k0, k1 uint64) {
	b := k.derive(synKeyLabel)
	return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
}
