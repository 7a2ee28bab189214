package control

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(attackerEnv); spec != "" {
		os.Exit(runSessionAttacker(spec))
	}
	os.Exit(m.Run())
}
