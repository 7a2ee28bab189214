package secure

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadClusterKey(t *testing.T) {
	secret := bytes.Repeat([]byte{0x5a}, MinKeySize)
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		wantErr string // empty: the key loads
	}{
		{"32 bytes, 0600", secret, 0o600, ""},
		{"with a newline, 0400", append(secret, '\n'), 0o400, ""},
		{"31 bytes", secret[:31], 0o600, "holds 31 bytes, fewer than 32"},
		{"empty", nil, 0o600, "holds 0 bytes"},
		{"group-readable", secret, 0o640, "chmod 600"},
		{"world-readable", secret, 0o604, "lets group or others read it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cluster.key")
			if err := os.WriteFile(path, tt.content, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			k, err := LoadClusterKey(path)
			if tt.wantErr == "" {
				if err != nil || !bytes.Equal(k.secret, tt.content) {
					t.Fatalf("LoadClusterKey = %v, %v; want the file's bytes", k, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadClusterKey error %v; want one naming %s and saying %q", err, path, tt.wantErr)
			}
		})
	}
}

func TestLoadClusterKeyRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{dir, os.DevNull} {
		if _, err := LoadClusterKey(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("LoadClusterKey(%s) error %v; want not a regular file", path, err)
		}
	}
	if _, err := LoadClusterKey(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadClusterKey(missing) error %v; want does not exist", err)
	}
}

func TestNewClusterKeyLength(t *testing.T) {
	if _, err := NewClusterKey(make([]byte, MinKeySize-1)); err == nil {
		t.Error("NewClusterKey accepted 31 bytes")
	}
	if _, err := NewClusterKey(make([]byte, MinKeySize)); err != nil {
		t.Errorf("NewClusterKey(32 bytes): %v", err)
	}
}

func TestDerivedKeys(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	k, err := NewClusterKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	want := func(label string) []byte {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(label))
		return mac.Sum(nil)
	}
	if got := k.PeerKey(); !bytes.Equal(got, want("slim peer channel v1")) {
		t.Errorf("PeerKey = %x", got)
	}
	syn := want("slim syn mac v1")
	k0, k1 := k.SynKey()
	if k0 != binary.LittleEndian.Uint64(syn) || k1 != binary.LittleEndian.Uint64(syn[8:]) {
		t.Errorf("SynKey = %#x, %#x; want the first 16 bytes of %x", k0, k1, syn)
	}
	if bytes.Equal(k.PeerKey()[:16], syn[:16]) {
		t.Error("the peer key and the SYN key are the same")
	}
}
