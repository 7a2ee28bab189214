// Package ioctlguard keeps a program from learning host facts through
// ioctls on the host sockets Slim hands it.
//
// A host socket lives in the host's network namespace, and the socket
// ioctls (SIOCGIFCONF, SIOCGIFADDR, SIOCGIFINDEX, SIOCGSKNS, the wireless
// ones …) answer for the socket's namespace, whoever calls them. No cgroup
// BPF hook sees ioctl, so secure mode guards them with seccomp user
// notification instead:
//
//   - Protect, called by `slim exec` just before it execs the program,
//     starts a guard process (detached: it is no child of the program),
//     installs on the calling thread a classic BPF filter that sends the
//     socket ioctls (0x89xx and 0x8bxx, except a few harmless ones) to the
//     guard, hands the guard the filter's listener and returns. The filter
//     covers the program and everything it starts, for good.
//   - The guard (Main) takes each such ioctl's file from the caller with
//     pidfd_getfd. A socket of another network namespace than the guard's
//     (the container's) gets ENODEV and nothing is done on it. On the
//     container's own sockets the guard performs the read-only requests
//     itself on that very file (so that swapping the fd in between changes
//     nothing) and copies their results to the caller; anything else is
//     handed back to the kernel to run as usual (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
//     The guard exits when no process under the filter is left.
//
// docs/secure.md lists what is covered and what is not.
package ioctlguard
