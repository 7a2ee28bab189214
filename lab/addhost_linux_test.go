package lab

import (
	"strings"
	"testing"
)

// TestAddHostNeedsEtcd: a lab whose routers list every host cannot take
// a host without changing every router's configuration: AddHost says so
// and makes nothing.
func TestAddHostNeedsEtcd(t *testing.T) {
	l := &Lab{Name: "nolab", Hosts: []Host{{Name: "h1"}}}
	if _, err := l.AddHost(1); err == nil || !strings.Contains(err.Error(), "needs a lab on etcd") {
		t.Errorf("AddHost on a lab without a store: %v", err)
	}
	if len(l.Hosts) != 1 {
		t.Errorf("the lab has %d hosts after a refused AddHost", len(l.Hosts))
	}
}
