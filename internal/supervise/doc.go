// Package supervise accelerates the programs the shim cannot be preloaded
// into: static binaries, programs of another libc (musl), and Go programs
// of any linking (they make system calls without libc). `slim exec` puts
// such a program under a seccomp filter whose listener the guard process
// holds (package ioctlguard); the guard hands the socket calls it traps to
// a Supervisor, which gives the program what the shim gives a preloaded
// one (docs/datapath.md, "The supervised path"):
//
//   - connect to an accelerated overlay destination: a host socket from
//     the router's pool, dressed like the program's socket (options, file
//     status flags, close-on-exec), connected by the supervisor with the
//     preamble in its SYN, and installed at the program's fd number in one
//     step (SECCOMP_IOCTL_NOTIF_ADDFD with SETFD); epoll registrations of
//     the old socket move to the new one;
//   - listen: a host listener from the router (LISTEN), kept by the
//     supervisor; when it has a connection, a "doorbell" connection to
//     the program's own listener makes that listener readable, so that
//     epoll, poll, select and blocking accepts all wake (a Go ≥ 1.22
//     server needs none: the host listener is registered in its
//     netpoller's epoll instance under its listener's number,
//     mirror_linux.go); accept and
//     accept4 on such a listener are performed by the supervisor, which
//     strips the preamble and installs the connection
//     (SECCOMP_ADDFD_FLAG_SEND). The router lists the host listener as
//     pending until the supervisor sees the program accept from its
//     listener in a way it serves (a trapped accept, an epoll
//     registration, a thread in poll or select on it: waiters_linux.go),
//     so a program that accepts with io_uring strands no client;
//   - getsockname and getpeername of host sockets answer overlay
//     addresses (plain mode; secure mode's cgroup programs do it there);
//   - AF_INET6 sockets that carry IPv4 (dual-stack listeners, connects to
//     v4-mapped addresses) get AF_INET6 host sockets and v4-mapped names,
//     as under the shim (inet6_linux.go).
//
// Every other call is left to the kernel (SECCOMP_USER_NOTIF_FLAG_CONTINUE)
// only after a decision to leave it alone: what the kernel then reads is
// what the program could have passed in the first place.
package supervise
