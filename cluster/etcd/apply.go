package etcd

import (
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/slimnet/slim/cluster"
)

// put applies a key's new value to the state being built; a value that
// does not decode drops the record (and is reported).
func (k keys) put(b *cluster.Builder, kv *mvccpb.KeyValue) error {
	p := k.parse(string(kv.Key))
	var err error
	switch p.kind {
	case kindNetwork:
		var n cluster.Network
		if n, err = decodeNetwork(kv.Value); err == nil {
			b.SetNetwork(n)
		}
	case kindPolicy:
		b.SetPolicy(cluster.Policy{Rules: kv.Value, Revision: kv.ModRevision})
	case kindClaim:
		var c cluster.Claim
		if c, err = decodeClaim(p.subnet, kv.Value); err == nil {
			b.SetClaim(c)
		} else {
			b.DeleteClaim(p.subnet)
		}
	case kindMember:
		var m cluster.Member
		if m, err = decodeMember(p.id, kv.Value); err == nil {
			b.SetMember(m)
		} else {
			b.DeleteMember(p.id)
		}
	case kindListeners:
		var ls []cluster.Listener
		if ls, err = decodeListeners(kv.Value); err == nil {
			b.SetListeners(p.id, ls)
		} else {
			b.DeleteListeners(p.id)
		}
	}
	if err != nil {
		return fmt.Errorf("ignoring %s: %w", kv.Key, err)
	}
	return nil
}

// remove applies a key's deletion.
func (k keys) remove(b *cluster.Builder, key []byte) {
	p := k.parse(string(key))
	switch p.kind {
	case kindNetwork:
		b.SetNetwork(cluster.Network{})
	case kindPolicy:
		b.SetPolicy(cluster.Policy{})
	case kindClaim:
		b.DeleteClaim(p.subnet)
	case kindMember:
		b.DeleteMember(p.id)
	case kindListeners:
		b.DeleteListeners(p.id)
	}
}
