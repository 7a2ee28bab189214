// Package shimserver serves the shims of one host on the router's unix
// SOCK_SEQPACKET socket (docs/protocol.md §1): it accepts connections,
// bounds how many each owner holds and how long they may idle, reads and
// decodes requests with the descriptors they carry, and sends replies.
// What a request means is not its business: a Handler identifies each
// caller and answers its requests.
//
// A Server owns every goroutine it starts: Serve returns only when the
// accept loop and every connection it accepted are done. Tests serve one
// end of a socketpair with ServeConn and a Handler of their own, with no
// root and no listener.
package shimserver
