// Package netns creates and deletes named network namespaces the way
// iproute2's `ip netns` does, so that Slim's namespaces and those made by
// `ip netns add` can live side by side:
//
//   - /run/netns is a mount point with shared propagation, made so under an
//     exclusive flock on the directory (iproute2 takes the same lock);
//   - a namespace is a file in /run/netns with the namespace bind-mounted on
//     it;
//   - deleting unmounts the file until nothing is mounted on it, then
//     unlinks it.
//
// If /run/netns were left a plain directory, the first `ip netns add` would
// bind-mount it over itself with a recursive copy of every namespace mount,
// hiding the originals, and their deletion would fail with EBUSY.
//
// Scratch namespaces for tests are held by a file descriptor (Scratch) and
// never named, so they cannot race anything that lists /run/netns.
package netns
