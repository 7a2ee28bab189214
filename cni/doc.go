// Package cni is Slim's CNI plugin (CNI spec 1.1: ADD, DEL, CHECK, STATUS,
// GC, VERSION), built into the slim binary: a runtime that execs slim with
// CNI_COMMAND set (installed as /opt/cni/bin/slim, "type": "slim") gets the
// plugin. docs/cni.md is its manual.
//
// ADD gives a container a veth pair onto the host's overlay bridge (slim0),
// an address of the host's overlay subnet (allocations are files on disk,
// under a file lock: the host-local IPAM's store), the route to the whole
// overlay through the bridge, and a registration with the host's router: a
// record in the router's directory (package router/registration), then the
// router's control API. With the router down, the container still gets its
// overlay network, and the router serves it from the record once it runs.
// DEL undoes all of it and may be called any number of times, with or
// without the namespace; GC removes what belongs to attachments the runtime
// no longer has.
//
// The plugin reads the router's configuration file (routerConfig in the
// network configuration): the overlay, this host's subnet, the router's
// directory. One file configures both.
package cni
