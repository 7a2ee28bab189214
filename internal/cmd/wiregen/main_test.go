package main

import (
	"bytes"
	"os"
	"testing"
)

// TestCommittedHeaderMatches fails when preload/wire.h has drifted from the
// Go definitions: run go generate ./router/protocol and commit the result.
func TestCommittedHeaderMatches(t *testing.T) {
	committed, err := os.ReadFile("../../../preload/wire.h")
	if err != nil {
		t.Fatal(err)
	}
	if want := header(); !bytes.Equal(committed, want) {
		t.Errorf("preload/wire.h is stale; run go generate ./router/protocol. Want:\n%s", want)
	}
}
