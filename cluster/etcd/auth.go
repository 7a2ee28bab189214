package etcd

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slimnet/slim/cluster"
)

// RootUser is etcd's administrator; with client certificates as the only
// credentials it is the certificate whose common name is "root".
const RootUser = "root"

// HostRole is the etcd role of a host's user.
func HostRole(id string) string { return "slim-host-" + id }

// Grants of a host's role (docs/cluster.md, "Security"): it may write its
// own records (PREFIX hosts/ID/), claim subnets (PREFIX subnets/: a range
// every host needs, the limit of this scheme) and read the rest. With
// PolicyWriter it may write the policy too (`slim policy` on that host).
type Grants struct {
	Prefix       string // default DefaultPrefix
	PolicyWriter bool
}

// permission is a key range and what a role may do with it.
type permission struct {
	key, end string
	perm     clientv3.PermissionType
}

// GrantHost makes (or completes) the etcd user of host id, named like
// the common name of its client certificate, with a role limited to its
// own keys. client must be root's.
func GrantHost(ctx context.Context, client *clientv3.Client, id string, g Grants) error {
	if err := cluster.CheckID(id); err != nil {
		return err
	}
	k := keys{prefix: g.Prefix}
	if k.prefix == "" {
		k.prefix = DefaultPrefix
	}
	role := HostRole(id)
	if _, err := client.RoleAdd(ctx, role); err != nil && !isExists(err) {
		return fmt.Errorf("adding role %s: %w", role, err)
	}
	perms := []permission{
		{k.prefix, clientv3.GetPrefixRangeEnd(k.prefix), clientv3.PermissionType(clientv3.PermRead)},
		{k.host(id), clientv3.GetPrefixRangeEnd(k.host(id)), clientv3.PermissionType(clientv3.PermReadWrite)},
		{k.subnets(), clientv3.GetPrefixRangeEnd(k.subnets()), clientv3.PermissionType(clientv3.PermReadWrite)},
	}
	if g.PolicyWriter {
		perms = append(perms, permission{k.policy(), "", clientv3.PermissionType(clientv3.PermReadWrite)})
	}
	for _, p := range perms {
		if _, err := client.RoleGrantPermission(ctx, role, p.key, p.end, p.perm); err != nil {
			return fmt.Errorf("granting %s on %s: %w", role, p.key, err)
		}
	}
	opts := &clientv3.UserAddOptions{NoPassword: true}
	if _, err := client.UserAddWithOptions(ctx, id, "", opts); err != nil && !isExists(err) {
		return fmt.Errorf("adding user %s: %w", id, err)
	}
	if _, err := client.UserGrantRole(ctx, id, role); err != nil {
		return fmt.Errorf("granting role %s to user %s: %w", role, id, err)
	}
	return nil
}

// SetNetwork records the overlay layout, for an administrator setting up
// a cluster whose hosts may not write it (with authentication on, a
// host's role cannot create it). A different layout already recorded is
// an error.
func SetNetwork(ctx context.Context, client *clientv3.Client, prefix string, n cluster.Network) error {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	s := &Store{client: client, keys: keys{prefix: prefix}}
	return s.ensureNetwork(ctx, n)
}

// EnableAuth turns etcd's authentication on, with root as the only
// administrator (its certificate's common name). client must reach etcd
// before authentication is on, or be root's.
func EnableAuth(ctx context.Context, client *clientv3.Client) error {
	opts := &clientv3.UserAddOptions{NoPassword: true}
	if _, err := client.UserAddWithOptions(ctx, RootUser, "", opts); err != nil && !isExists(err) {
		return fmt.Errorf("adding user root: %w", err)
	}
	if _, err := client.UserGrantRole(ctx, RootUser, "root"); err != nil {
		return fmt.Errorf("granting role root: %w", err)
	}
	if _, err := client.AuthEnable(ctx); err != nil {
		return fmt.Errorf("enabling authentication: %w", err)
	}
	return nil
}

func isExists(err error) bool {
	switch rpctypes.ErrorDesc(err) {
	case rpctypes.ErrUserAlreadyExist.Error(), rpctypes.ErrRoleAlreadyExist.Error():
		return true
	}
	return false
}

// isPermissionDenied says whether etcd refused a request for the user's role.
func isPermissionDenied(err error) bool {
	return err != nil && rpctypes.ErrorDesc(err) == rpctypes.ErrPermissionDenied.Error()
}
