/*
 * libslim internals: shared declarations of the shim's pieces.
 *
 * Layout (see docs/datapath.md for the design, docs/protocol.md for bytes):
 *   init.c       constructor, fork handling, wiring of the pieces
 *   real.c       real libc entry points, the clock
 *   log.c        logging to stderr
 *   config.c     configuration from the environment
 *   fdtable.c    per-fd state table, listener objects, hidden fds
 *   router.c     router client (per-thread SEQPACKET connection), host
 *                socket pool
 *   directory.c  read-only view of DIR/directory (seqlock reader)
 *   connect.c    socket, bind, setsockopt, connect, getsockname, getpeername
 *   inet6.c      AF_INET6 sockets that carry IPv4 (v4-mapped addresses)
 *   inet6overlay.c  IPv6 overlay addresses (a /96 plus the IPv4 address)
 *   listen.c     listen, accept, accept4, epoll_ctl
 *   arm.c        clients go to a host listener only once the app is
 *                seen accepting; sendmsg/recvmsg of listeners, shutdown
 *   handoff.c    connections passed to another process (SCM_RIGHTS):
 *                their overlay names in the container's name book
 *   poll.c       poll, ppoll, select, pselect over merged listeners
 *   dup.c        close, dup*, fcntl/fcntl64, ioctl, close_range, closefrom
 *   exec.c       the exec family, posix_spawn, system and popen: state
 *                carried to the new image in SLIM_FDS (or a memfd),
 *                restored by its constructor
 *   keepenv.c    the shim's variables put back into a new image's
 *                environment that a daemon rebuilt without them
 *   chroot.c     chroot: the router connection and the directory made
 *                ready before the root changes
 *
 * Rules: libc only; no malloc and no stdio anywhere (most intercepted calls
 * are async-signal-safe and the shim runs inside arbitrary processes); no
 * lock is ever held across a blocking syscall; errno is preserved on every
 * path that succeeds; the shim's own syscalls go through slim_real, never
 * through the exported wrappers.
 */
#ifndef SLIM_SHIM_H
#define SLIM_SHIM_H

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>

#include "compat.h"
#include "wire.h"

#define SLIM_EXPORT __attribute__((visibility("default")))
#define SLIM_HIDDEN __attribute__((visibility("hidden")))
#define SLIM_TLS __thread __attribute__((tls_model("initial-exec")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/*
 * Dependencies go one way: real, log and config at the bottom; fdtable
 * above them (it reports what the router client must know through
 * slim_fd_events, set by init.c); router, directory and stats above that;
 * the wrappers (connect, listen, poll, dup, exec) on top; init.c wires
 * them together.
 */

/* ---- real libc entry points (real.c) ---------------------------------- */

struct slim_real_fns {
	int (*socket)(int, int, int);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*close)(int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	int (*close_range)(unsigned int, unsigned int, int);
	void (*closefrom)(int);
	int (*ioctl)(int, unsigned long, ...);
	int (*execve)(const char *, char *const[], char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*fexecve)(int, char *const[], char *const[]);
	int (*posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			   const posix_spawnattr_t *, char *const[], char *const[]);
	int (*posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			    const posix_spawnattr_t *, char *const[], char *const[]);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
	int (*shutdown)(int, int);
	int (*system)(const char *);
	void *(*popen)(const char *, const char *); /* FILE *: no stdio.h here */
	int (*chroot)(const char *);
};

SLIM_HIDDEN extern struct slim_real_fns slim_real;
SLIM_HIDDEN void slim_resolve(void);

/*
 * REAL(name): the next definition of name (libc's). Resolved in the
 * constructor; a call that arrives before it (another library's
 * constructor) resolves on the spot. dlsym of the same symbol always yields
 * the same value, so a race between two resolvers is benign.
 */
#define REAL(name)                                                            \
	(likely(__atomic_load_n(&slim_real.name, __ATOMIC_RELAXED) != NULL)    \
		 ? slim_real.name                                              \
		 : (slim_resolve(), slim_real.name))

/* Returns a monotonic time in milliseconds (vDSO, cheap). */
SLIM_HIDDEN int64_t slim_now_ms(void);

/* ---- configuration (config.c) ------------------------------------------- */

struct slim_config {
	char router_path[108]; /* sun_path */
	char dir_path[4096];   /* DIR/directory */
	int timeout_ms;        /* router request timeout */
	bool debug;
};
SLIM_HIDDEN extern struct slim_config slim_cfg;

/* Reads SLIM_DEBUG. */
SLIM_HIDDEN void slim_config_debug(void);
/* Reads the router's socket path and timeout; false: the shim stays inert. */
SLIM_HIDDEN bool slim_configure(void);

/* ---- statistics for the router (stats.c) ------------------------------- */

/* Fallback reasons (SLIM_FB_*) and SLIM_SETUP_BUCKETS: wire.h. */

SLIM_HIDDEN int64_t slim_now_us(void);
SLIM_HIDDEN void slim_stats_fallback(int reason);
/* Counts an accelerated connect that started at started_us. */
SLIM_HIDDEN void slim_stats_setup(int64_t started_us);
SLIM_HIDDEN void slim_stats_atfork_child(void);

/* ---- logging (log.c) ----------------------------------------------------- */

/*
 * Writes one line to stderr with write(2). fmt knows %s, %d, %u, %x and
 * %A (an IPv4 address, u32 in network byte order), %P (a port, u16 network
 * byte order passed as unsigned). The line is truncated at 256 bytes.
 */
SLIM_HIDDEN void slim_log(const char *fmt, ...);
#define slim_debug(...)                                                       \
	do {                                                                  \
		if (unlikely(slim_cfg.debug))                                 \
			slim_log(__VA_ARGS__);                                \
	} while (0)
SLIM_HIDDEN const char *slim_errname(int err);

/* ---- per-fd table (fdtable.c) ----------------------------------------- */

enum slim_kind {
	SLIM_NONE = 0,
	SLIM_CAND,     /* AF_INET or AF_INET6 stream socket from socket(), not connected */
	SLIM_CONN,     /* accelerated connection: a host socket */
	SLIM_LISTENER, /* merged listener: app listener + hidden host listener */
	SLIM_HIDDEN_FD /* a shim-owned fd (pool socket, host listener, router) */
};

enum slim_hidden_kind { SLIM_H_POOL = 1, SLIM_H_LISTENER, SLIM_H_ROUTER };

/* Entry flags. */
#define SLIM_F_NOACCEL 0x01  /* never accelerate (state we cannot replay) */
#define SLIM_F_BOUND 0x02    /* the app bound it to a port or a foreign IP */
#define SLIM_F_BOUND0 0x04   /* bound (any port): the host socket takes the same port */
#define SLIM_F_BOUND_IP 0x08 /* ... to u.b.ip: ours only if it is our own IP */
#define SLIM_F_BOUND_PORT 0x10 /* ... on the port u.b.port (the app named it) */
#define SLIM_F_FD_KNOWN 0x20 /* CAND: its FD_CLOEXEC is tracked (SLIM_F_CLOEXEC) */
#define SLIM_F_CLOEXEC 0x40  /* ... and it is set */
#define SLIM_F_INET6 0x80    /* CAND: an AF_INET6 socket (IPv4 only v4-mapped) */

#define SLIM_MAX_EPREGS 8
#define SLIM_MAX_OPTS 16
#define SLIM_OPT_MAX_LEN 16

struct slim_epreg {
	int epfd;
	uint32_t events;
	uint64_t data;
};

struct slim_opt {
	int level;
	int name;
	uint32_t len;
	uint8_t val[SLIM_OPT_MAX_LEN];
};

/* What a not-yet-connected socket needs replayed onto its host socket. */
struct slim_ext {
	uint8_t nregs;
	uint8_t nopts;
	struct slim_epreg regs[SLIM_MAX_EPREGS];
	struct slim_opt opts[SLIM_MAX_OPTS];
};

/*
 * What a merged listener's host listener is doing (arm.c). After LISTEN
 * the directory lists it as pending (no client connects to it); the first
 * accept, poll, select or epoll registration the shim sees arms it:
 * PUBLISH, and clients come.
 */
enum slim_lstate {
	SLIM_L_PENDING = 0, /* host listener listening, not published yet */
	SLIM_L_ARMED,       /* host listener published */
	SLIM_L_ADOPT,       /* none live: ask for one (LISTEN) at the next interest */
	SLIM_L_BUSY,        /* ADOPT under way in another thread */
	SLIM_L_OFF,         /* none live, none asked for until the app listens again */
	SLIM_L_GIVEN,       /* handed to another process (SCM_RIGHTS): none here */
};

/* A merged listener's shared half; refcounted across dups of the app fd. */
struct slim_listener {
	_Atomic int refs;   /* 0: free slot */
	_Atomic int hidden; /* the host listener's fd (live only when PENDING/ARMED) */
	_Atomic uint8_t state; /* enum slim_lstate */
	uint32_t ip;        /* overlay address it was published under (nbo) */
	uint16_t port;      /* nbo */
	bool v6;            /* an AF_INET6 listener: so are the host listener and its connections */
	uint16_t fams;      /* directory flags (SLIM_DIR_F_*): the clients it takes; 0: IPv4 */
	int backlog;        /* the app's, for the host listener's listen() */
	pid_t owner;        /* process that asked for it (sends UNLISTEN) */
	/*
	 * A hint (listen.c): the last blocking accept had to wait, so the
	 * next one polls first instead of trying an accept that finds
	 * nothing. Counts the poll-first accepts, to try accept-first now
	 * and then.
	 */
	_Atomic unsigned int waited;
	/*
	 * The epoll sets the app put its listener in (mirrored on the host
	 * listener): replayed on a host listener that comes later, removed
	 * from one that goes. Guarded by reg_lock (never across a syscall).
	 */
	_Atomic uint32_t reg_lock;
	uint8_t nregs;
	bool regs_lost; /* more sets than fit */
	struct slim_epreg regs[SLIM_MAX_EPREGS];
};

struct slim_conn {
	uint32_t lip, pip;     /* overlay local and peer IP (nbo) */
	uint16_t lport, pport; /* nbo */
	uint8_t v6;            /* SLIM_FORM_*: nonzero for an AF_INET6 socket */
};

/* How a connection's overlay addresses are shown to the app. */
#define SLIM_FORM_V4 0     /* sockaddr_in */
#define SLIM_FORM_MAPPED 1 /* sockaddr_in6, v4-mapped */
#define SLIM_FORM_OV6 2    /* sockaddr_in6, the IPv6 overlay address */

struct slim_fd {
	_Atomic uint32_t lock;
	_Atomic uint8_t kind;
	uint8_t flags;
	uint8_t hkind;
	uint8_t pad;
	uint32_t ext; /* index + 1 into the ext slab; 0: none */
	uint32_t pad2;
	union {
		struct slim_conn c;
		struct {
			uint32_t ip;   /* SLIM_CAND with SLIM_F_BOUND_IP (nbo) */
			uint16_t port; /* SLIM_CAND with SLIM_F_BOUND_PORT (nbo) */
		} b;
		struct slim_listener *l; /* SLIM_LISTENER, SLIM_H_LISTENER */
		int slot;                /* SLIM_H_ROUTER */
	} u;
};

SLIM_HIDDEN extern struct slim_fd *_Atomic slim_table;
SLIM_HIDDEN extern unsigned int slim_table_size;
SLIM_HIDDEN extern int slim_hidden_base;
SLIM_HIDDEN extern _Atomic int slim_nlisteners;

SLIM_HIDDEN int slim_table_init(void);
SLIM_HIDDEN void slim_table_atfork_child(void);

/*
 * What the fd table reports to the router client (which sits above it):
 * set once by the constructor, before any fd is tracked.
 */
struct slim_fd_events {
	/*
	 * The last reference to a listener this process asked for went while
	 * the app's fd is still open: withdraw it (fd: its host listener, or
	 * the app's listener when it has none).
	 */
	void (*unlisten)(int fd);
	/* A hidden fd (SLIM_H_ROUTER: slot) moved to newfd; -1: it is gone. */
	void (*hidden_moved)(int hkind, int slot, int oldfd, int newfd);
};
SLIM_HIDDEN void slim_fd_events_set(const struct slim_fd_events *ev);

/* The entry of fd, or NULL when the shim is inert or fd is out of range. */
static inline struct slim_fd *slim_ent(int fd)
{
	struct slim_fd *t = atomic_load_explicit(&slim_table, memory_order_acquire);
	if (t == NULL || (unsigned int)fd >= slim_table_size)
		return NULL;
	return &t[fd];
}

static inline int slim_kind_of(int fd)
{
	struct slim_fd *e = slim_ent(fd);
	return e ? atomic_load_explicit(&e->kind, memory_order_relaxed) : SLIM_NONE;
}

SLIM_HIDDEN void slim_lock(int fd);
SLIM_HIDDEN void slim_unlock(int fd);
/* slim_lock that gives up after spins tries (async-signal-safe paths). */
SLIM_HIDDEN bool slim_trylock(int fd, unsigned int spins);
SLIM_HIDDEN struct slim_ext *slim_ext_get(struct slim_fd *e, bool create);
SLIM_HIDDEN void slim_ext_free(struct slim_fd *e);

/*
 * Clears fd's entry and returns what it held so the caller can let go of
 * it (slim_release) outside the lock.
 */
SLIM_HIDDEN void slim_take(int fd, struct slim_fd *old);
/* Lets go of taken state: drops a listener reference (app_fd still open). */
SLIM_HIDDEN void slim_release(const struct slim_fd *old, int app_fd);
/* slim_take + slim_release. */
SLIM_HIDDEN void slim_forget(int fd);
/* Marks a freshly created fd: CAND or NONE (and drops stale state). */
SLIM_HIDDEN void slim_set_kind(int fd, int kind);
SLIM_HIDDEN void slim_set_conn(int fd, const struct slim_conn *c);
/* dup semantics: copy oldfd's state onto newfd (just returned by dup*). */
SLIM_HIDDEN void slim_copy(int oldfd, int newfd);

/* A listener object (state PENDING, backlog 0); NULL when none is free. */
SLIM_HIDDEN struct slim_listener *slim_listener_new(int hidden, uint32_t ip, uint16_t port);
SLIM_HIDDEN void slim_listener_put(struct slim_listener *l, int app_fd);
/* This process's listener for overlay ip:port (a reference), or NULL. */
SLIM_HIDDEN struct slim_listener *slim_listener_find(uint32_t ip, uint16_t port);
/* Takes a reference unless the listener is already gone. */
SLIM_HIDDEN bool slim_listener_get(struct slim_listener *l);
/*
 * The hidden host listener survives exec exactly when one of the app fds
 * of its listener does (no FD_CLOEXEC), so the exec'd image can restore
 * the pair (exec.c). Re-evaluated whenever an app fd's FD_CLOEXEC may have
 * changed: listen, dup*, F_SETFD, FIOCLEX/FIONCLEX, close.
 */
SLIM_HIDDEN void slim_listener_sync_cloexec(struct slim_listener *l);
/* fd's FD_CLOEXEC may have changed (or fd is new): sync its listener, if any. */
SLIM_HIDDEN void slim_fd_cloexec_changed(int fd);
SLIM_HIDDEN void slim_set_cloexec(int fd, bool on);
/*
 * A candidate's FD_CLOEXEC, tracked from socket() on so that connect need
 * not ask the kernel: the app set it (on 1/0) with F_SETFD, FIOCLEX,
 * FIONCLEX or close_range(CLOSE_RANGE_CLOEXEC) (connect.c).
 */
SLIM_HIDDEN void slim_cand_cloexec(int fd, int on);

/*
 * Moves a just-received fd to a high number (CLOEXEC) and records it as
 * hidden. Returns the new fd, or -1 (the fd is closed) when it cannot be
 * tracked.
 */
SLIM_HIDDEN int slim_hide(int fd, int hkind);
/*
 * slim_hide for n just-received fds at once (fewer syscalls: the old
 * numbers are closed in ranges). fds[] is rewritten with the hidden fds;
 * returns how many there are (fds that cannot be tracked are closed).
 */
SLIM_HIDDEN int slim_hide_many(int *fds, int n, int hkind);
/* Records fd (already at its place, e.g. inherited across exec) as hidden. */
SLIM_HIDDEN void slim_mark_hidden(int fd, int hkind);
SLIM_HIDDEN void slim_hidden_ref(int fd, struct slim_listener *l, int slot);
/* Closes a hidden fd and clears its entry. */
SLIM_HIDDEN void slim_hidden_close(int fd);
/* The app is about to dup2 onto fd: move our hidden fd out of the way. */
SLIM_HIDDEN void slim_hidden_evict(int fd);
/* Iterates over entries in use in [lo, hi]; used by close_range. */
SLIM_HIDDEN int slim_next_used(unsigned int lo, unsigned int hi);
/* for (each fd whose entry is in use) — the table must be initialized. */
#define SLIM_FOR_EACH_USED(fd)                                                 \
	for (int fd = slim_next_used(0, slim_table_size - 1); fd >= 0;          \
	     fd = (unsigned int)fd + 1 < slim_table_size                        \
			  ? slim_next_used((unsigned int)fd + 1, slim_table_size - 1) \
			  : -1)

/* ---- router client and pool (router.c) -------------------------------- */

/* Header, message types (SLIM_T_*), SLIM_MAX_PAYLOAD, SLIM_POOL_CAP: wire.h. */
#define SLIM_POOL_BATCH 32

/*
 * One request and its reply. Returns 0, or -1 with *err: a router failure
 * (transport, timeout, malformed reply: the warning is printed once) or the
 * errno of an ERROR reply (*router_err set). Received fds land in fds.
 */
struct slim_reply {
	uint16_t type;
	uint32_t len;
	uint8_t payload[SLIM_MAX_PAYLOAD];
	int fds[SLIM_POOL_CAP];
	int nfds;
};
SLIM_HIDDEN int slim_router_call(uint16_t type, const void *payload, uint32_t len,
				 int fd_in, uint16_t want, struct slim_reply *rep,
				 int *err);
/*
 * LISTEN for the app's listening socket app_fd: the host listener (hidden,
 * O_NONBLOCK; pending in the directory) or -1; *ip and *port get the
 * overlay address it stands for.
 */
SLIM_HIDDEN int slim_listen_request(int app_fd, int backlog, uint32_t *ip, uint16_t *port);
/* PUBLISH: the app is seen accepting from host, which stands for ip:port. */
SLIM_HIDDEN bool slim_publish(int host, uint32_t ip, uint16_t port, uint16_t fams);
/*
 * Withdraws a listener from the directory: UNLISTEN with fd (its host
 * listener, or the app's listener when there is none), waiting up to the
 * router timeout for the OK. The router closes what a request carried
 * before it replies, so after an OK no copy of fd is left in the router:
 * the port is free when the app's close returns (docs/protocol.md §1).
 */
SLIM_HIDDEN void slim_unlisten(int fd);
/*
 * RESERVE: the overlay address of app_fd, bound and about to listen, is
 * listed pending on every host until the LISTEN that follows. False when
 * the router refused it (nothing reserved).
 */
SLIM_HIDDEN bool slim_reserve(int app_fd);
/* A one-way note (STATS): dropped if it would block, or while
 * the shim leaves the router alone. Returns whether it was sent. */
SLIM_HIDDEN bool slim_router_note(uint16_t type, const void *payload, uint32_t len,
				  int fd_in);
/* Whether the shim leaves the router alone after a failure (back-off). */
SLIM_HIDDEN bool slim_router_resting(void);
/* A note sent even while the shim leaves the router alone (as the
 * process exits: one non-blocking attempt). */
SLIM_HIDDEN bool slim_router_note_now(uint16_t type, const void *payload, uint32_t len);
/* A HELLO round trip within wait_ms, back-off or not, with no warning:
 * once it returns true, the router has read every note this thread sent
 * before. */
SLIM_HIDDEN bool slim_router_sync(int wait_ms);
SLIM_HIDDEN void slim_router_atfork_child(void);
/* Sets up closing a thread's connection at its exit; 0 or an error. */
SLIM_HIDDEN int slim_router_init(void);
SLIM_HIDDEN void slim_router_moved(int slot, int oldfd, int newfd);
/* The once-per-process "router unreachable" warning. */
SLIM_HIDDEN void slim_warn_router(const char *why, int err);

/* Own overlay IP and CIDR from HELLO (lazily, once). */
struct slim_self {
	uint32_t ip, net, mask; /* nbo */
	bool secure;            /* the router runs in secure mode */
	bool ipv6;              /* the overlay has IPv6 addresses: v6pfx */
	uint8_t v6pfx[12];      /* the overlay's IPv6 /96 */
};
SLIM_HIDDEN bool slim_hello(struct slim_self *self);
/* In secure mode a refused connect is EPERM from the kernel's policy
 * check; the app sees ECONNREFUSED, as from a rejecting firewall. */
SLIM_HIDDEN int slim_policy_errno(int err);

/* A read-only fd of the directory table from the router (TABLE), for a
 * process that may not open DIR/directory by its path; -1 if none. */
SLIM_HIDDEN int slim_table_fd(void);

/* Pops a host socket (AF_INET6 if v6) from its pool, refilling it; -1 when none. */
SLIM_HIDDEN int slim_pool_get(bool v6);
SLIM_HIDDEN void slim_pool_moved(int oldfd, int newfd);
SLIM_HIDDEN void slim_pool_atfork_child(void);

/* ---- directory (directory.c) ------------------------------------------ */

/*
 * 1: found (host ip/port nbo), SLIM_DIR_PENDING: listed without a host port
 * (its app is not seen accepting yet), 0: not there, -1: no usable
 * directory.
 */
#define SLIM_DIR_PENDING 2
/* For a client of the IPv6 overlay address (v6) or of the IPv4 one. */
/*
 * Before a chroot: maps the table now (the path will be out of reach).
 * After it: the mapping is kept, and a replaced file comes over TABLE.
 */
SLIM_HIDDEN void slim_dir_before_chroot(void);
SLIM_HIDDEN void slim_dir_after_chroot(void);
SLIM_HIDDEN int slim_dir_lookup_fam(uint32_t ip, uint16_t port, bool v6, uint32_t *hip,
				    uint16_t *hport);
static inline int slim_dir_lookup(uint32_t ip, uint16_t port, uint32_t *hip, uint16_t *hport)
{
	return slim_dir_lookup_fam(ip, port, false, hip, hport);
}

/* ---- preamble ---------------------------------------------------------- */

/* SLIM_PREAMBLE_MAGIC, _VERSION, _LEN: wire.h. */
SLIM_HIDDEN void slim_preamble_build(uint8_t out[SLIM_PREAMBLE_LEN], uint32_t cip,
				     uint16_t cport, uint32_t sip, uint16_t sport);
SLIM_HIDDEN bool slim_preamble_parse(const uint8_t in[SLIM_PREAMBLE_LEN], uint32_t *cip,
				     uint16_t *cport, uint32_t *sip, uint16_t *sport);

/*
 * Fills ip:port in form (SLIM_FORM_*: a sockaddr_in, or a sockaddr_in6 with
 * the v4-mapped or the IPv6 overlay address, flowinfo and scope id 0, as
 * the kernel gives) into (addr, *len) with accept/getsockname truncation.
 */
SLIM_HIDDEN void slim_fill_addr(struct sockaddr *addr, socklen_t *len, uint32_t ip, uint16_t port,
				int form);

/* ---- AF_INET6 sockets that carry IPv4 (inet6.c) ----------------------- */

/* An address and port in either family; ip is v4 when the address is IPv4. */
struct slim_inaddr {
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;
	socklen_t len;
};

/* Fills a with ip:port (nbo), v4-mapped in an AF_INET6 address if v6. */
SLIM_HIDDEN void slim_inaddr_set(struct slim_inaddr *a, uint32_t ip, uint16_t port, bool v6);
/*
 * The IPv4 address and port of sa: an AF_INET address, or an AF_INET6 one
 * that is v4-mapped (::ffff:a.b.c.d) or :: (then *ip is INADDR_ANY: the
 * caller checks IPV6_V6ONLY). false: an IPv6 address, or not an address.
 */
SLIM_HIDDEN bool slim_inaddr_v4(const struct sockaddr *sa, socklen_t len, uint32_t *ip,
				uint16_t *port);
/* Whether an AF_INET6 socket is IPV6_V6ONLY (it carries no IPv4). */
SLIM_HIDDEN bool slim_v6only(int fd);

/* Why an AF_INET6 socket is left alone (each said once under SLIM_DEBUG). */
enum slim_v6_case {
	SLIM_V6_DEST = 0,   /* connect to an IPv6 address */
	SLIM_V6_ONLY,       /* an IPV6_V6ONLY socket */
	SLIM_V6_BOUND,      /* a listener bound to an IPv6 address */
	SLIM_V6_OVERLAY_SECURE, /* an IPv6 overlay address in secure mode */
	SLIM_V6_CASES,
};
/* Counts a fallback (SLIM_FB_IPV6) and says why, the first time, for fd. */
SLIM_HIDDEN void slim_v6_left_alone(int fd, int why);

/* ---- IPv6 overlay addresses (inet6overlay.c) --------------------------- */

/* Whether a is in self's IPv6 overlay /96; *ip gets its IPv4 overlay address. */
SLIM_HIDDEN bool slim_ov6_is(const struct slim_self *self, const struct in6_addr *a, uint32_t *ip);
/* slim_inaddr_set in a SLIM_FORM_*. */
SLIM_HIDDEN void slim_inaddr_form(struct slim_inaddr *a, uint32_t ip, uint16_t port, int form);
/*
 * A connect destination in the IPv6 overlay: 1, its IPv4 twin in dst4; 0:
 * not one (no IPv6 overlay, another address); -1: one, left alone (secure
 * mode: said, counted).
 */
SLIM_HIDDEN int slim_ov6_dest(int fd, const struct sockaddr_in6 *in6, struct sockaddr_in *dst4);
/* Whether a (a destination as the app gave it) is a real IPv6 address. */
SLIM_HIDDEN bool slim_inaddr_is_ov6(const struct slim_inaddr *a);
/* Sets the preamble's flag: the client connected to the IPv6 address. */
SLIM_HIDDEN void slim_preamble_mark_ov6(uint8_t pre[SLIM_PREAMBLE_LEN]);
/* The SLIM_FORM_* of a connection accepted from l with preamble pre; -1:
 * l does not take clients of that family (the host connection is dropped). */
SLIM_HIDDEN int slim_accepted_form(const struct slim_listener *l,
				   const uint8_t pre[SLIM_PREAMBLE_LEN]);
/*
 * An AF_INET6 listener bound to :: or to the container's own IPv6 overlay
 * address: 1 if it takes IPv6 overlay clients (*ip: INADDR_ANY or the
 * IPv4 overlay address, *fams its directory flags), 0 if there is no
 * IPv6 overlay or in6 is another address, -1 in secure mode.
 */
SLIM_HIDDEN int slim_listener_v6(int fd, const struct sockaddr_in6 *in6, uint32_t *ip,
				 uint16_t *fams);
/*
 * The directory flags of a listening fd from its own facts (an exec'd or
 * received listener), without asking the router: the router drops them
 * where there is no IPv6 overlay (PUBLISH).
 */
SLIM_HIDDEN uint16_t slim_listener_fams_of(int fd);
/*
 * slim_inaddr_v4, and an address of the IPv6 overlay (*ip: its IPv4 twin;
 * not in secure mode): what a bind of an AF_INET6 socket keeps a candidate.
 */
SLIM_HIDDEN bool slim_inaddr_v4_or_ov6(const struct sockaddr *sa, socklen_t len, uint32_t *ip,
				       uint16_t *port);
/*
 * An AF_INET6 socket bound to an address of the other family than its
 * destination (an IPv6 overlay one, ov6, or a v4-mapped one): the kernel
 * refuses that connect, so the shim leaves it to the kernel.
 */
SLIM_HIDDEN bool slim_bound_other_family(int fd, bool ov6);
/* An option the app set that its host socket does not take (IPV6_V6ONLY:
 * the host socket carries IPv4). */
SLIM_HIDDEN bool slim_opt_host_skips(const struct slim_opt *o);

/* ---- exec (exec.c) ------------------------------------------------------ */

/*
 * The constructor's half of exec: restores the fds SLIM_FDS describes
 * (active: the shim is configured) or closes the host listeners nobody
 * would accept from (inert), and removes SLIM_FDS from the environment.
 */
SLIM_HIDDEN void slim_exec_restore(bool active);

/* ---- the shim's variables across exec (keepenv.c) ------------------------ */

#define SLIM_KEEP_PATH_MAX 1024 /* the shim's path, at most */
#define SLIM_KEEP_MAX 4

/* What a new image's environment needs to load and configure the shim. */
struct slim_keep {
	char *add[SLIM_KEEP_MAX]; /* entries to add */
	size_t n;
	char *drop;		       /* the entry they replace (an LD_PRELOAD), or NULL */
	char preload[2 * SLIM_KEEP_PATH_MAX]; /* a combined LD_PRELOAD */
};

/* The constructor of an active shim: notes its path and variables. */
SLIM_HIDDEN void slim_keepenv_init(void);
/*
 * Fills k if envp has no SLIM_ROUTER_SOCK at all (a rebuilt environment)
 * and says so; false (nothing to add) for an environment handed on.
 * Async-signal-safe.
 */
SLIM_HIDDEN bool slim_keepenv_plan(struct slim_keep *k, char *const envp[]);

/* ---- arming host listeners (arm.c) --------------------------------------- */

/*
 * The app shows interest in accepting from listener l (app fd app_fd, or
 * -1 when unknown: then only a pending host listener is armed): arms or
 * asks for its host listener if need be. Returns the host listener to
 * accept from, or -1.
 */
SLIM_HIDDEN int slim_listener_want(struct slim_listener *l, int app_fd);
/* Whether this process was seen waiting to accept: it arms at listen(). */
SLIM_HIDDEN bool slim_seen_accepting(void);
/* The host listener to accept from (PENDING or ARMED), or -1. */
SLIM_HIDDEN int slim_listener_host(struct slim_listener *l);
/* The host listener turned out dead (shut down elsewhere): stop using it. */
SLIM_HIDDEN void slim_listener_detach(struct slim_listener *l);
/* The least backlog of a host listener (the router's minHostBacklog). */
#define SLIM_MIN_HOST_BACKLOG 4096
/* The app listened again on a merged listener's fd. */
SLIM_HIDDEN void slim_listener_relisten(struct slim_listener *l, int backlog);
/* The app changed an epoll registration of its listener: record it. */
SLIM_HIDDEN void slim_listener_record(struct slim_listener *l, int epfd, int op,
				      const struct epoll_event *ev);
/* Takes a reference to fd's listener, or NULL if fd is not a merged listener. */
SLIM_HIDDEN struct slim_listener *slim_listener_of(int fd);

/* ---- passed connections (handoff.c) ------------------------------------- */

/*
 * fd is about to be passed to another process (sendmsg with SCM_RIGHTS):
 * an accelerated connection's names go in the container's name book
 * first, for the receiver. Plain mode only.
 */
SLIM_HIDDEN void slim_handoff(int fd);
/*
 * fd, a connected TCP socket of family domain, was received from another
 * process: if it is a host connection (its local address is not the
 * container's), its names come from the name book and fd becomes an
 * accelerated connection; otherwise, or if the book has none, the
 * kernel's stay.
 */
SLIM_HIDDEN void slim_handoff_received(int fd, int domain);

/* ---- poll helpers (poll.c) --------------------------------------------- */

/*
 * The host listener to wait on for merged listener fd, or -1; want: the
 * app is about to wait for it to be readable (arms it).
 */
SLIM_HIDDEN int slim_merged_hidden(int fd, bool want);

#endif
