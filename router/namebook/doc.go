// Package namebook is a container's name book: the overlay addresses of
// the accelerated connections its processes pass to one another over
// unix sockets (SCM_RIGHTS; docs/datapath.md, "A connection passed to
// another process", docs/protocol.md §6).
//
// An accelerated connection is a host socket, whose kernel names are host
// addresses; only the process that made or accepted it knows its overlay
// names (an accepted one's come from its preamble). The router gives each
// container one book, a sealed memfd that every process of the container
// maps read-write (NAMEBOOK): the process that passes a connection writes
// its names under the socket's cookie, the one that receives it reads
// them by the cookie of the socket it got. No router message per
// connection: Node's cluster primary passes every connection it accepts.
//
// A book is one container's: nothing in it reaches another container. What
// one process writes, another of the container believes, as a server
// believes a client's preamble in plain mode; a reader checks what the
// kernel and its own overlay address tell (the cookie, the socket's
// family, its own address as the local one). Secure mode's kernel
// programs name host sockets themselves, and its router hands out no
// book.
package namebook
