package etcdrun

import (
	"context"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"
)

// TestIntegrationScratchCluster starts a three-member cluster in a
// scratch namespace, writes through it, and reads back after one member
// was killed.
func TestIntegrationScratchCluster(t *testing.T) {
	testenv.Integration(t)
	testenv.Tools(t, Binary)
	s, err := NewScratch(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	client, err := s.Client("root")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := client.Put(ctx, "/k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Process(0).Kill(); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(ctx, "/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get /k after a member was killed: %v %v", resp, err)
	}
}
