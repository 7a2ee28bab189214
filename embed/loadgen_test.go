package prebuilt

import (
	"bytes"
	"debug/elf"
	"testing"
)

// The load generator must be one that slim exec can accelerate: an
// executable with a program interpreter (dynamically linked), needing
// nothing but libc.
func TestLoadgenIsDynamicallyLinked(t *testing.T) {
	f, err := elf.NewFile(bytes.NewReader(Loadgen()))
	if err != nil {
		t.Fatalf("embedded slim-loadgen is not ELF: %v", err)
	}
	defer f.Close()
	var interp bool
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp = true
		}
	}
	if !interp {
		t.Error("slim-loadgen has no program interpreter: a static binary ignores LD_PRELOAD")
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatalf("reading its libraries: %v", err)
	}
	if len(libs) != 1 || libs[0] != "libc.so.6" {
		t.Errorf("slim-loadgen needs %v, want only libc.so.6", libs)
	}
}
