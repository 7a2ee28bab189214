package prebuilt

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"testing"
)

func TestShimIsASharedObject(t *testing.T) {
	f, err := elf.NewFile(bytes.NewReader(Shim()))
	if err != nil {
		t.Fatalf("embedded libslim.so is not ELF: %v", err)
	}
	defer f.Close()
	if f.Type != elf.ET_DYN {
		t.Errorf("libslim.so type = %v, want ET_DYN", f.Type)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatalf("read dynamic symbols: %v", err)
	}
	var found bool
	for _, s := range syms {
		if s.Name == "slim_shim_version" && s.Section != elf.SHN_UNDEF {
			found = true
		}
	}
	if !found {
		t.Error("libslim.so does not export slim_shim_version")
	}
}

func TestShimDigest(t *testing.T) {
	sum := sha256.Sum256(Shim())
	if got, want := ShimDigest(), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("ShimDigest() = %s, want %s", got, want)
	}
}

func TestSecureSpecParses(t *testing.T) {
	spec, err := LoadSecure()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"slim_connect4", "slim_bind4", "slim_getsockname4", "slim_getpeername4",
		"slim_setsockopt", "slim_sockops", "slim_ingress", "slim_container_connect4", "slim_container_connect6"} {
		if _, ok := spec.Programs[name]; !ok {
			t.Errorf("no program %s in the embedded object", name)
		}
	}
}
