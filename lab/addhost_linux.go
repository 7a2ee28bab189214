package lab

import (
	"context"
	"errors"
	"fmt"

	"github.com/slimnet/slim/cluster/etcd"
	"github.com/slimnet/slim/internal/pki"
)

// AddHost adds a host with containers containers to a lab on etcd that
// is up: its namespaces, its link to the wire and its overlay, its
// certificate and etcd user. No other host's configuration changes; the
// other routers learn of it from etcd once its router joins
// (StartHostRouter). A lab whose routers list every host (no store) has
// no such thing: each router's host list would change.
func (l *Lab) AddHost(containers int) (Host, error) {
	if l.Store != StoreEtcd {
		return Host{}, errors.New("adding a host needs a lab on etcd (slim lab up --store etcd): without a store every router's host list would change")
	}
	i := len(l.Hosts) + 1
	spec := Spec{Name: l.Name, Hosts: i, Containers: containers, Store: l.Store, IPv6: l.IPv6.IsValid()}
	if err := spec.Validate(); err != nil {
		return Host{}, err
	}
	plan, err := overlayPlan(i, spec.IPv6)
	if err != nil {
		return Host{}, err
	}
	wire, err := handleFor(wireNamespace(l.Name))
	if err != nil {
		return Host{}, err
	}
	defer wire.Close()
	host, err := buildHost(spec, plan, wire, i)
	if err == nil {
		err = l.enrollEtcdHost(host.Name)
	}
	if err != nil {
		removeHostNamespaces(l.Name, i, containers)
		return Host{}, fmt.Errorf("adding host %s: %w", hostName(i), err)
	}
	l.Hosts = append(l.Hosts, host)
	return host, l.save()
}

// enrollEtcdHost issues a host's certificate with the lab's CA and gives
// it its etcd user and role (as setUpEtcdUsers does at Up).
func (l *Lab) enrollEtcdHost(name string) error {
	ca, err := pki.LoadAuthority(l.EtcdDir())
	if err != nil {
		return fmt.Errorf("the lab's etcd CA (a lab made before AddHost existed cannot add hosts): %w", err)
	}
	pair, err := ca.Client(name)
	if err == nil {
		_, err = pair.Write(l.EtcdDir(), name)
	}
	if err != nil {
		return err
	}
	client, err := l.EtcdClient(etcd.RootUser)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), etcdReadyWithin)
	defer cancel()
	return etcd.GrantHost(ctx, client, name, etcd.Grants{PolicyWriter: true})
}

// removeHostNamespaces removes what a failed AddHost made of host i.
func removeHostNamespaces(lab string, i, containers int) {
	for j := 1; j <= containers; j++ {
		deleteNamespace(namespaceOf(lab, containerName(i, j)))
	}
	deleteNamespace(namespaceOf(lab, hostName(i)))
}

// StartHostRouter starts the router of the host named name with the lab's
// cluster key (as StartRouters does for every host) and waits until it
// serves and every host routes the overlay to every other.
func (l *Lab) StartHostRouter(name, binary string, args ...string) error {
	key, err := l.EnsureClusterKey()
	if err != nil {
		return err
	}
	for i, h := range l.Hosts {
		if h.Name != name {
			continue
		}
		set := RouterSet{Binary: binary, Args: append([]string{"--key-file", key}, args...)}
		if err := l.startRouter(i, set); err != nil {
			return fmt.Errorf("router of %s: %w", name, err)
		}
		if l.Store == StoreEtcd {
			return l.WaitForOverlayRoutes()
		}
		return nil
	}
	return fmt.Errorf("lab %s has no host %q", l.Name, name)
}
