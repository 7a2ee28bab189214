// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * Secure mode's programs (docs/secure.md). All but container_connect4 are
 * attached to the router's own cgroup, so they run for exactly the host
 * sockets the router made (and the connections accepted from its
 * listeners), whoever holds them. The router's own calls pass untouched;
 * a container's are checked:
 *
 *   connect4      a fresh pool socket may connect once, to an overlay
 *                 address of an accelerated listener the policy allows;
 *                 the address is rewritten to the host listener here, so
 *                 the container never learns it
 *   bind4         refused, but once on a fresh pool socket to a port of
 *                 the host's ephemeral range
 *   getsockname4  overlay addresses instead of host ones
 *   getpeername4
 *   setsockopt    an allowlist of the options applications set
 *   getsockopt    an allowlist; any other value read comes back zeroed
 *   sock_ops      the SYN carries the client's overlay address and a
 *                 SipHash MAC of it and the connection's addresses under
 *                 the cluster key
 *   ingress       a SYN to a Slim host listener without a valid MAC is
 *                 dropped; a valid one records who the client is
 *   sock_release  a host socket the router made is gone (slim_live)
 *   connect6 bind6 getsockname6 getpeername6
 *                 the same for AF_INET6 host sockets, on v4-mapped
 *                 addresses (they carry IPv4); ingress6 drops IPv6
 *                 packets to any host socket the router made
 *
 * container_connect4 and container_connect6 are attached to the cgroups of
 * containers started by `slim exec` and apply the same policy to
 * connections over the overlay: connect6 for AF_INET6 sockets that connect
 * to a v4-mapped overlay address (the kernel runs the connect6 hook only
 * for them, not connect4).
 */
#include <linux/bpf.h>
#include <asm-generic/socket.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "siphash.h"

#define SLIM_MAX_RULES 4096   /* secure.MaxRules */
#define SLIM_MAX_LIVE (1 << 20) /* host sockets tracked (slim_live) */
#define SLIM_OPT_KIND 254   /* RFC 6994 experimental option ... */
#define SLIM_OPT_EXID 0x534c /* ... with the experiment id "SL" */
#define SLIM_OPT_LEN 16
#define SOL_TLS 282
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h */

enum slim_kind {
	SLIM_SK_POOL = 1,      /* pool socket, not yet connected */
	SLIM_SK_CONNECTED = 2, /* pool socket, connected once */
	SLIM_SK_LISTENER = 3,  /* host listener, and (cloned) what it accepts */
};

/* Per-socket state, set by the router (pool sockets, listeners). */
struct slim_sk {
	__u32 kind;
	__u32 self_ip;   /* the owner's overlay address */
	__u32 peer_ip;   /* connected: the overlay destination */
	__u16 self_port; /* listener: overlay port (network order) */
	__u16 peer_port; /* connected: overlay destination port (network order) */
};

/* An accelerated listener: overlay address -> host address. */
struct slim_addr {
	__u32 ip;
	__u16 port; /* network order */
	__u16 pad;
};

/* A verified client of a host listener, by the connection's host addresses. */
struct slim_tuple {
	__u32 client_ip;
	__u32 server_ip;
	__u16 client_port; /* network order */
	__u16 server_port;
};

enum slim_action {
	SLIM_END = 0, /* no rule here: the list ends */
	SLIM_ALLOW = 1,
	SLIM_DENY = 2,
};

struct slim_rule {
	__u32 src_net, src_mask;
	__u32 dst_net, dst_mask; /* network order */
	__u16 port_lo, port_hi;  /* host order */
	__u32 action;            /* enum slim_action */
};

struct slim_config {
	__u64 router_cgroup;
	__u64 k0, k1; /* SipHash key, from the cluster key */
	__u32 unused; /* was the rule count; the policy map has its own end */
	__u32 overlay_net, overlay_mask;
	__u16 bind_port_min; /* the ports a pool socket may be bound to */
	__u16 bind_port_max;
	/* An IPv6 overlay's /96 (network order; all zero: none): a
	 * container's IPv6 address is the /96 and its IPv4 overlay address. */
	__u32 overlay6[3];
	__u32 pad;
};

enum slim_counter {
	SLIM_C_POLICY_DENIED,
	SLIM_C_CONNECT_REFUSED, /* re-target, no such listener, unknown socket */
	SLIM_C_BIND_REFUSED,
	SLIM_C_SOCKOPT_REFUSED,
	SLIM_C_SYN_DROPPED,
	SLIM_C_SYN_VERIFIED,
	SLIM_C_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct slim_sk);
} slim_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct slim_addr);
	__type(value, struct slim_addr);
} slim_routes SEC(".maps");

/*
 * One update per accepted connection: per-CPU free lists
 * (BPF_F_NO_COMMON_LRU) keep CPUs off one lock, which a VM's paravirtual
 * spinlocks make expensive under contention.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(max_entries, 65536);
	__type(key, struct slim_tuple);
	__type(value, __u32);
} slim_clients SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} slim_containers SEC(".maps");

/*
 * The policy: the rules in order, up to the first SLIM_END. The router
 * fills a new list and swaps it in whole, so a program sees the old rules
 * or the new ones, never a mix; a list that cannot be filled is never seen.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(max_entries, SLIM_MAX_RULES);
		__type(key, __u32);
		__type(value, struct slim_rule);
	});
} slim_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLIM_MAX_RULES);
	__type(key, __u32);
	__type(value, __u64);
} slim_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct slim_config);
} slim_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLIM_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} slim_counters SEC(".maps");

/*
 * The host sockets the router made that are still open, by socket cookie:
 * pool sockets and host listeners (the router adds them) and the
 * connections the listeners accept (sock_ops adds them); each leaves when
 * it is released. A clean stop takes secure mode out of the kernel only
 * when none is left and none was missed (slim_live_lost).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SLIM_MAX_LIVE);
	__type(key, __u64);
	__type(value, __u8);
} slim_live SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} slim_live_lost SEC(".maps");

static __always_inline void track_live(__u64 cookie)
{
	__u8 one = 1;
	if (bpf_map_update_elem(&slim_live, &cookie, &one, BPF_ANY) == 0)
		return;
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&slim_live_lost, &zero);
	if (lost)
		__sync_fetch_and_add(lost, 1);
}

static __always_inline struct slim_config *config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&slim_settings, &zero);
}

static __always_inline void count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&slim_counters, &which);
	if (n)
		*n += 1;
}

/* The router itself (and the kernel, with no task) is never hindered. */
static __always_inline int from_router(const struct slim_config *cfg)
{
	return cfg == NULL || bpf_get_current_cgroup_id() == cfg->router_cgroup;
}

/* A walk of the policy with bpf_loop: thousands of rules, one verified body. */
struct policy_walk {
	void *rules; /* the list in force when the walk began */
	__u32 src, dst;
	__u16 port;
	__u16 pad;
	__u32 match;           /* index of the first rule that matches */
	struct slim_rule rule; /* that rule (action SLIM_END: none) */
};

static long policy_step(__u32 i, struct policy_walk *w)
{
	__u32 key = i;
	struct slim_rule *r = bpf_map_lookup_elem(w->rules, &key);
	if (!r || r->action == SLIM_END)
		return 1;
	if ((w->src & r->src_mask) != r->src_net || (w->dst & r->dst_mask) != r->dst_net ||
	    w->port < r->port_lo || w->port > r->port_hi)
		return 0;
	w->match = i;
	w->rule = *r;
	return 1;
}

/* First matching rule decides; none: allowed. Counts the hit. */
static __always_inline int policy_denies(__u32 src, __u32 dst, __u16 port_nbo)
{
	__u32 zero = 0;
	void *rules = bpf_map_lookup_elem(&slim_policy, &zero);
	if (!rules)
		return 0;
	struct policy_walk w = {.rules = rules, .src = src, .dst = dst, .port = bpf_ntohs(port_nbo)};
	bpf_loop(SLIM_MAX_RULES, policy_step, &w, 0);
	if (w.rule.action == SLIM_END)
		return 0;
	__u32 key = w.match;
	__u64 *hits = bpf_map_lookup_elem(&slim_hits, &key);
	if (hits)
		*hits += 1;
	return w.rule.action == SLIM_DENY;
}

static __always_inline __u64 syn_mac(const struct slim_config *cfg, __u32 saddr, __u32 daddr,
				     __u16 sport, __u16 dport, __u32 overlay)
{
	__u64 m0 = ((__u64)saddr << 32) | daddr;
	__u64 m1 = ((__u64)sport << 48) | ((__u64)dport << 32) | overlay;
	return slim_siphash(cfg->k0, cfg->k1, m0, m1);
}

/*
 * A pool socket's connect to an overlay listener (ip, port; address_ok:
 * the address is one the socket's family may name): the host listener
 * standing for it, the socket then marked connected; or NULL, refused and
 * counted. connect4 and connect6 write the host address in their form.
 */
static __always_inline struct slim_addr *pool_connect(struct bpf_sock *sk, int address_ok, __u32 ip,
						      __u16 port)
{
	struct slim_sk *st = bpf_sk_storage_get(&slim_socks, sk, 0, 0);
	if (!st || st->kind != SLIM_SK_POOL || !address_ok) {
		count(SLIM_C_CONNECT_REFUSED);
		return NULL;
	}
	struct slim_addr dst = {.ip = ip, .port = port};
	struct slim_addr *host = bpf_map_lookup_elem(&slim_routes, &dst);
	if (!host) {
		count(SLIM_C_CONNECT_REFUSED);
		return NULL;
	}
	if (policy_denies(st->self_ip, dst.ip, dst.port)) {
		count(SLIM_C_POLICY_DENIED);
		return NULL;
	}
	/* Revocation finds it by this state (sock_diag dumps socket storage). */
	st->kind = SLIM_SK_CONNECTED;
	st->peer_ip = dst.ip;
	st->peer_port = dst.port;
	return host;
}

SEC("cgroup/connect4")
int slim_connect4(struct bpf_sock_addr *ctx)
{
	if (from_router(config()))
		return 1;
	struct slim_addr *host = pool_connect(ctx->sk, 1, ctx->user_ip4, (__u16)ctx->user_port);
	if (!host)
		return 0;
	ctx->user_ip4 = host->ip;
	ctx->user_port = host->port;
	return 1;
}

/*
 * A client the app bound to a port (often port 0: any) gets a host socket
 * bound to the same port, so its own address does not change. That one
 * bind is allowed: on a fresh pool socket, to 0.0.0.0 and a port of the
 * host's ephemeral range (bind_port_min..max: ip_local_port_range less the
 * reserved ports and the router's own), the ports the kernel hands out to
 * outgoing connections anyway. A pool socket can still listen() (no
 * cgroup hook sees it), but only on such a port, which no host service may
 * count on, and ingress drops every SYN to it: it can never hold a host
 * service's port nor accept anything.
 */
/* Whether a bind of a fresh pool socket to no address (unspecified) and port is allowed. */
static __always_inline int pool_may_bind(const struct slim_config *cfg, struct bpf_sock *sk, int unspecified,
					 __u32 port_nbo)
{
	struct slim_sk *st = bpf_sk_storage_get(&slim_socks, sk, 0, 0);
	__u16 port = bpf_ntohs((__u16)port_nbo);
	if (st && st->kind == SLIM_SK_POOL && unspecified && cfg->bind_port_min != 0 &&
	    port >= cfg->bind_port_min && port <= cfg->bind_port_max)
		return 1;
	count(SLIM_C_BIND_REFUSED);
	return 0;
}

SEC("cgroup/bind4")
int slim_bind4(struct bpf_sock_addr *ctx)
{
	struct slim_config *cfg = config();
	if (from_router(cfg))
		return 1;
	return pool_may_bind(cfg, ctx->sk, ctx->user_ip4 == 0, ctx->user_port);
}

/* The overlay address an app sees as its own on a host socket (0: none). */
static __always_inline __u32 overlay_self(struct bpf_sock *sk, __u32 *port)
{
	struct slim_sk *st = bpf_sk_storage_get(&slim_socks, sk, 0, 0);
	if (!st) {
		*port = 0;
		return 0;
	}
	if (st->kind == SLIM_SK_LISTENER)
		*port = st->self_port;
	return st->self_ip;
}

SEC("cgroup/getsockname4")
int slim_getsockname4(struct bpf_sock_addr *ctx)
{
	if (from_router(config()))
		return 1;
	__u32 port = ctx->user_port;
	ctx->user_ip4 = overlay_self(ctx->sk, &port);
	ctx->user_port = port;
	return 1;
}

/* The verified overlay address of the client of an accepted connection. */
static __always_inline __u32 accepted_client(struct bpf_sock *sk)
{
	struct slim_tuple t = {
		.client_ip = sk->dst_ip4,
		.server_ip = sk->src_ip4,
		.client_port = (__u16)sk->dst_port,
		.server_port = bpf_htons((__u16)sk->src_port),
	};
	__u32 *ip = bpf_map_lookup_elem(&slim_clients, &t);
	return ip ? *ip : 0;
}

/* The verified client of an accepted connection, moved into its state. */
static __always_inline void take_client(struct bpf_sock *sk, struct slim_sk *st)
{
	struct slim_tuple t = {
		.client_ip = sk->dst_ip4,
		.server_ip = sk->src_ip4,
		.client_port = (__u16)sk->dst_port,
		.server_port = bpf_htons((__u16)sk->src_port),
	};
	__u32 *ip = bpf_map_lookup_elem(&slim_clients, &t);
	if (!ip)
		return;
	st->peer_ip = *ip;
	bpf_map_delete_elem(&slim_clients, &t);
}

/*
 * The overlay address an app sees as its peer on a host socket: a
 * connected pool socket's destination; an accepted connection's verified
 * client, moved into its state at accept (slim_sockops; older ones: the
 * map), the port the kernel's; else none (0).
 */
static __always_inline __u32 overlay_peer(struct bpf_sock *sk, __u32 *port)
{
	struct slim_sk *st = bpf_sk_storage_get(&slim_socks, sk, 0, 0);
	if (st && st->kind == SLIM_SK_CONNECTED) {
		*port = st->peer_port;
		return st->peer_ip;
	}
	if (st && st->kind == SLIM_SK_LISTENER)
		return st->peer_ip ? st->peer_ip : accepted_client(sk);
	*port = 0;
	return 0;
}

SEC("cgroup/getpeername4")
int slim_getpeername4(struct bpf_sock_addr *ctx)
{
	if (from_router(config()))
		return 1;
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return 1;
	__u32 port = ctx->user_port;
	ctx->user_ip4 = overlay_peer(sk, &port);
	ctx->user_port = port;
	return 1;
}

/*
 * Socket options on host sockets: an allowlist of what applications set
 * (nginx, redis, memcached, PostgreSQL, curl, iperf3, netperf, Python ...).
 * Anything else is refused: options that re-target the socket
 * (SO_BINDTODEVICE, SO_MARK, SO_REUSEPORT, IP_OPTIONS, IP_TRANSPARENT,
 * TCP_REPAIR ...), and those that hand host addresses back: IP_PKTINFO and
 * the other IP_RECV* flags (getsockopt IP_PKTOPTIONS returns them with the
 * host address), IP_RECVERR (ICMP errors carry the packet's headers on the
 * error queue), TCP_SAVE_SYN, TCP_MD5SIG (keys name host addresses).
 */
#define TCP_RTO_MAX_MS 44
#define TCP_RTO_MIN_US 45
#define TCP_DELACK_MAX_US 46
#define TCP_IS_MPTCP 43

/* SO_TIMESTAMPING flags (linux/net_tstamp.h), newer ones included. */
#define TS_TX (1 << 0 | 1 << 1 | 1 << 8 | 1 << 9 | 1 << 18) /* HARDWARE SOFTWARE SCHED ACK COMPLETION */
#define TS_OPT_TSONLY (1 << 11)
/* RX_HARDWARE RX_SOFTWARE SOFTWARE SYS_HARDWARE RAW_HARDWARE OPT_ID
 * OPT_STATS OPT_TX_SWHW OPT_ID_TCP OPT_RX_FILTER. Not OPT_CMSG (IP_PKTINFO
 * of the host on the error queue), OPT_PKTINFO (the host's ifindex),
 * BIND_PHC (a host clock). */
#define TS_SAFE (1 << 2 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 12 | 1 << 14 | 1 << 16 | 1 << 17)

/*
 * Timestamps are fine; a transmit timestamp must come alone
 * (OPT_TSONLY): otherwise the error queue gets a copy of the whole frame,
 * with both host addresses and ports.
 */
static __always_inline int timestamping_allowed(struct bpf_sockopt *ctx)
{
	__u8 *v = ctx->optval;
	if (ctx->optlen < 4 || v + 4 > (__u8 *)ctx->optval_end)
		return 0;
	__u32 flags = *(__u32 *)v;
	if (flags & ~(TS_TX | TS_OPT_TSONLY | TS_SAFE))
		return 0;
	return !(flags & TS_TX) || (flags & TS_OPT_TSONLY);
}

/* TCP_ULP "tls" (kernel TLS); no other upper-layer protocol. */
static __always_inline int ulp_is_tls(struct bpf_sockopt *ctx)
{
	__u8 *v = ctx->optval;
	if (ctx->optlen < 3 || v + 4 > (__u8 *)ctx->optval_end)
		return 0;
	return v[0] == 't' && v[1] == 'l' && v[2] == 's' && (ctx->optlen == 3 || v[3] == 0);
}

/*
 * The IPv6 level, for AF_INET6 host sockets (they carry IPv4): what
 * applications set on a dual-stack socket. IPV6_V6ONLY only to 0 (see
 * setsockopt_allowed). Not IPV6_ADDRFORM (turns the socket into an
 * AF_INET one), IPV6_RECVPKTINFO and the other IPV6_RECV* flags,
 * IPV6_RECVERR (host addresses back), IPV6_TRANSPARENT, IPV6_FREEBIND,
 * IPV6_FLOWLABEL_MGR ...
 */
static __always_inline int settable_ipv6(int name)
{
	switch (name) {
	case IPV6_TCLASS: case IPV6_UNICAST_HOPS: case IPV6_MTU_DISCOVER: case IPV6_DONTFRAG:
		return 1;
	}
	return 0;
}

/* Options a container may set on a host socket, and read back. */
static __always_inline int settable(int level, int name)
{
	switch (level) {
	case SOL_SOCKET:
		switch (name) {
		case SO_REUSEADDR: case SO_KEEPALIVE: case SO_LINGER: case SO_SNDBUF:
		case SO_RCVBUF: case SO_OOBINLINE: case SO_PRIORITY: case SO_RCVLOWAT:
		case SO_SNDLOWAT: case SO_RCVTIMEO_OLD: case SO_SNDTIMEO_OLD:
		case SO_RCVTIMEO_NEW: case SO_SNDTIMEO_NEW: case SO_TIMESTAMP_OLD:
		case SO_TIMESTAMPNS_OLD: case SO_TIMESTAMP_NEW: case SO_TIMESTAMPNS_NEW:
		case SO_SELECT_ERR_QUEUE: case SO_PEEK_OFF: case SO_MAX_PACING_RATE:
		case SO_INCOMING_CPU: case SO_ZEROCOPY:
			return 1;
		}
		return 0;
	case IPPROTO_IP:
		switch (name) {
		case IP_TOS: case IP_TTL: case IP_MTU_DISCOVER: case IP_MINTTL:
		case IP_BIND_ADDRESS_NO_PORT: case IP_LOCAL_PORT_RANGE:
			return 1;
		}
		return 0;
	case IPPROTO_TCP:
		switch (name) {
		case TCP_NODELAY: case TCP_MAXSEG: case TCP_CORK: case TCP_KEEPIDLE:
		case TCP_KEEPINTVL: case TCP_KEEPCNT: case TCP_SYNCNT: case TCP_LINGER2:
		case TCP_DEFER_ACCEPT: case TCP_WINDOW_CLAMP: case TCP_QUICKACK:
		case TCP_CONGESTION: case TCP_THIN_LINEAR_TIMEOUTS: case TCP_THIN_DUPACK:
		case TCP_USER_TIMEOUT: case TCP_FASTOPEN: case TCP_NOTSENT_LOWAT:
		case TCP_FASTOPEN_CONNECT: case TCP_FASTOPEN_NO_COOKIE: case TCP_INQ:
		case TCP_TX_DELAY: case TCP_RTO_MAX_MS: case TCP_RTO_MIN_US:
		case TCP_DELACK_MAX_US:
			return 1;
		}
		return 0;
	case SOL_TLS:
		return 1;
	case IPPROTO_IPV6:
		return settable_ipv6(name);
	}
	return 0;
}

/*
 * IPV6_V6ONLY set to 0 (Java does on every socket): the socket stays
 * dual-stack. 1 would make it take IPv6 only, and nothing Slim makes
 * carries IPv6.
 */
static __always_inline int v6only_off(struct bpf_sockopt *ctx)
{
	__u8 *v = ctx->optval;
	if (ctx->optlen < 4 || v + 4 > (__u8 *)ctx->optval_end)
		return 0;
	return *(__u32 *)v == 0;
}

static __always_inline int setsockopt_allowed(struct bpf_sockopt *ctx)
{
	int level = ctx->level, name = ctx->optname;
	if (level == SOL_SOCKET && (name == SO_TIMESTAMPING_OLD || name == SO_TIMESTAMPING_NEW))
		return timestamping_allowed(ctx);
	if (level == IPPROTO_TCP && name == TCP_ULP)
		return ulp_is_tls(ctx);
	if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY)
		return v6only_off(ctx);
	return settable(level, name);
}

SEC("cgroup/setsockopt")
int slim_setsockopt(struct bpf_sockopt *ctx)
{
	if (from_router(config()) || setsockopt_allowed(ctx))
		return 1;
	count(SLIM_C_SOCKOPT_REFUSED);
	return 0;
}

/* Values a container may read besides those it may set. */
static __always_inline int readable(int level, int name)
{
	if (settable(level, name))
		return 1;
	switch (level) {
	case SOL_SOCKET:
		switch (name) {
		case SO_TYPE: case SO_ERROR: case SO_ACCEPTCONN: case SO_PROTOCOL:
		case SO_DOMAIN: case SO_PEERCRED: case SO_PEERNAME: case SO_COOKIE:
		case SO_MEMINFO: case SO_NETNS_COOKIE: case SO_REUSEPORT:
		case SO_TIMESTAMPING_OLD: case SO_TIMESTAMPING_NEW:
			return 1;
		}
		return 0;
	case IPPROTO_IP:
		return name == IP_MTU || name == IP_PROTOCOL;
	case IPPROTO_TCP:
		return name == TCP_INFO || name == TCP_CC_INFO || name == TCP_TIMESTAMP ||
		       name == TCP_ZEROCOPY_RECEIVE || name == TCP_IS_MPTCP || name == TCP_ULP;
	case IPPROTO_IPV6:
		return name == IPV6_V6ONLY || name == IPV6_MTU;
	}
	return 0;
}

/*
 * Zeroes what the kernel returned. getsockopt runs the kernel first, into
 * the caller's buffer: refusing the call (EPERM) would leave the value
 * there, so the call succeeds and reads zeros instead. The program sees at
 * most a page of it; a longer value cannot be cleared and fails (EFAULT).
 */
static __always_inline void zero_value(struct bpf_sockopt *ctx)
{
	__u8 *p = ctx->optval, *end = ctx->optval_end;
	__u32 len = ctx->optlen;
	if (len > 4096 || p + len > end) {
		ctx->optlen = 4097; /* more than the program's buffer: EFAULT */
		return;
	}
	for (__u32 i = 0; i < 4096 / 8; i++) {
		if (i * 8 >= len || p + 8 > end)
			break;
		*(__u64 *)p = 0;
		p += 8;
	}
	for (int i = 0; i < 8; i++) {
		if (p + 1 > end)
			break;
		*p = 0;
		p++;
	}
}

/*
 * Reading an option: the values the allowlist names pass; any other
 * (SO_ORIGINAL_DST, the host listener's address with conntrack active;
 * TCP_FASTOPEN_KEY, the host's Fast Open key; SO_INCOMING_NAPI_ID ...)
 * comes back zeroed. A call the kernel refused keeps its error, and an
 * empty answer (sshd's IP_OPTIONS and SO_BINDTODEVICE of every
 * connection: none) hides nothing, so it is not counted as refused.
 */
SEC("cgroup/getsockopt")
int slim_getsockopt(struct bpf_sockopt *ctx)
{
	if (from_router(config()) || ctx->retval != 0 || readable(ctx->level, ctx->optname))
		return 1;
	if (ctx->optlen == 0)
		return 1;
	zero_value(ctx);
	count(SLIM_C_SOCKOPT_REFUSED);
	return 1;
}

static __always_inline void write_syn_option(struct bpf_sock_ops *skops, struct slim_config *cfg,
					     __u32 overlay)
{
	__u16 sport = bpf_htons((__u16)skops->local_port);
	__u16 dport = (__u16)(skops->remote_port >> 16);
	/* One 4-byte load each: the context does not allow the 8-byte load
	 * the compiler would merge them into. */
	__u32 saddr = *(volatile __u32 *)&skops->local_ip4;
	__u32 daddr = *(volatile __u32 *)&skops->remote_ip4;
	__u64 mac = syn_mac(cfg, saddr, daddr, sport, dport, overlay);
	struct {
		__u8 kind, len;
		__u16 exid;
		__u32 overlay;
		__u64 mac;
	} __attribute__((packed)) opt = {
		.kind = SLIM_OPT_KIND,
		.len = SLIM_OPT_LEN,
		.exid = bpf_htons(SLIM_OPT_EXID),
		.overlay = overlay,
		.mac = mac,
	};
	bpf_store_hdr_opt(skops, &opt, sizeof opt, 0);
}

/* The callbacks slim_sockops acts on; the kernel makes others (timeouts,
 * windows, ECN, RTT) for every socket, which it leaves at once. */
static __always_inline int sockops_wanted(__u32 op)
{
	switch (op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		return 1;
	}
	return 0;
}

SEC("sockops")
int slim_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;
	if (!sockops_wanted(op))
		return 1;
	/* Slim's option rides in the SYN only. */
	if ((op == BPF_SOCK_OPS_HDR_OPT_LEN_CB || op == BPF_SOCK_OPS_WRITE_HDR_OPT_CB) &&
	    !(skops->skb_tcp_flags & 0x02))
		return 1;
	struct bpf_sock *sk = skops->sk;
	if (!sk)
		return 1;
	struct slim_sk *st = bpf_sk_storage_get(&slim_socks, sk, 0, 0);
	if (!st)
		return 1;
	if (skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
		/* accepted from a host listener: a host socket to keep guarding */
		track_live(bpf_get_socket_cookie(skops));
		/*
		 * Its verified client moves from slim_clients into its own
		 * state (cloned from the listener's, peer_ip unused there):
		 * getpeername reads it there, and the deleted entry refills
		 * the LRU's free list, which otherwise had to evict (a scan
		 * of its lists) at every new client.
		 */
		take_client(sk, st);
		return 1;
	}
	if (st->kind != SLIM_SK_CONNECTED)
		return 1;
	struct slim_config *cfg = config();
	if (!cfg)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
							 BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		if (skops->skb_tcp_flags & 0x02 /* SYN */)
			bpf_reserve_hdr_opt(skops, SLIM_OPT_LEN, 0);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		if (skops->skb_tcp_flags & 0x02)
			write_syn_option(skops, cfg, st->self_ip);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags &
							 ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		break;
	}
	return 1;
}

#define SLIM_OPTS_MAX 40 /* a TCP header's options: 60 bytes less 20 */

static __always_inline __u8 opt_byte(const __u8 *opts, __u32 i)
{
	return opts[i & 63];
}

/*
 * Finds Slim's option in a SYN's options, [off, end) of the packet; 1
 * found (overlay, mac filled). The options are copied in one helper call
 * and walked on the stack.
 */
static __always_inline int find_option(struct __sk_buff *skb, __u32 off, __u32 end, __u32 *overlay,
				       __u64 *mac)
{
	__u8 opts[64] = {};
	if (end <= off)
		return 0;
	__u32 len = end - off;
	if (len == 0 || len > SLIM_OPTS_MAX || bpf_skb_load_bytes(skb, off, opts, len))
		return 0;
	__u32 o = 0;
	for (int i = 0; i < 20; i++) {
		if (o >= len)
			return 0;
		__u8 kind = opt_byte(opts, o);
		if (kind == 0) /* end of options */
			return 0;
		if (kind == 1) { /* no-op */
			o++;
			continue;
		}
		if (o + 2 > len)
			return 0;
		__u8 optlen = opt_byte(opts, o + 1);
		if (optlen < 2)
			return 0;
		if (kind == SLIM_OPT_KIND && optlen == SLIM_OPT_LEN && o + SLIM_OPT_LEN <= len &&
		    opt_byte(opts, o + 2) == (SLIM_OPT_EXID >> 8) && opt_byte(opts, o + 3) == (SLIM_OPT_EXID & 0xff)) {
			/* As the option's bytes sit in memory (little-endian loads). */
			__u32 v = 0;
			__u64 m = 0;
			for (int k = 3; k >= 0; k--)
				v = v << 8 | opt_byte(opts, o + 4 + k);
			for (int k = 7; k >= 0; k--)
				m = m << 8 | opt_byte(opts, o + 8 + k);
			*overlay = v;
			*mac = m;
			return 1;
		}
		o += optlen;
	}
	return 0;
}

/* A SYN to a Slim listener: 1 pass (valid, client recorded), 0 drop. */
static __always_inline int check_syn(struct __sk_buff *skb, const struct iphdr *ip,
				     const struct tcphdr *tcp, __u32 tcp_off)
{
	struct slim_config *cfg = config();
	if (!cfg)
		return 0;
	__u32 overlay = 0;
	__u64 mac = 0;
	__u32 end = tcp_off + tcp->doff * 4;
	if (!find_option(skb, tcp_off + sizeof *tcp, end, &overlay, &mac) ||
	    mac != syn_mac(cfg, ip->saddr, ip->daddr, tcp->source, tcp->dest, overlay)) {
		count(SLIM_C_SYN_DROPPED);
		return 0;
	}
	struct slim_tuple t = {
		.client_ip = ip->saddr,
		.server_ip = ip->daddr,
		.client_port = tcp->source,
		.server_port = tcp->dest,
	};
	bpf_map_update_elem(&slim_clients, &t, &overlay, BPF_ANY);
	count(SLIM_C_SYN_VERIFIED);
	return 1;
}

/*
 * Whether a packet cannot be a SYN to check, read in place (no helper
 * call): every packet of every accelerated connection comes here, SYNs
 * are a few of them. 0 when the headers are not all in the linear part:
 * then the copy below decides.
 */
static __always_inline int surely_not_syn(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data;
	if ((void *)(ip + 1) > end)
		return 0;
	if (ip->protocol != IPPROTO_TCP)
		return 1;
	struct tcphdr *tcp = data + ip->ihl * 4;
	if ((void *)(tcp + 1) > end)
		return 0;
	return !tcp->syn || tcp->ack;
}

SEC("cgroup_skb/ingress")
int slim_ingress(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP) || surely_not_syn(skb))
		return 1;
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof ip) || ip.protocol != IPPROTO_TCP)
		return 1;
	__u32 tcp_off = ip.ihl * 4;
	struct tcphdr tcp;
	if (bpf_skb_load_bytes(skb, tcp_off, &tcp, sizeof tcp))
		return 1;
	if (!tcp.syn || tcp.ack)
		return 1;
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return 1;
	/* Only the router's sockets carry storage. A SYN is for a Slim host
	 * listener; a pool socket a container made listen gets none. */
	struct slim_sk *st = bpf_sk_storage_get(&slim_socks, sk, 0, 0);
	if (!st)
		return 1;
	if (st->kind != SLIM_SK_LISTENER) {
		count(SLIM_C_SYN_DROPPED);
		return 0;
	}
	return check_syn(skb, &ip, &tcp, tcp_off);
}

/* A host socket the router made (or accepted) is gone: its last file closed. */
SEC("cgroup/sock_release")
int slim_sock_release(struct bpf_sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	bpf_map_delete_elem(&slim_live, &cookie);
	return 1;
}

/* A container's connect to an overlay address: 1 allowed, 0 denied. */
static __always_inline int container_may_connect(__u32 dst, __u16 port_nbo)
{
	struct slim_config *cfg = config();
	if (!cfg)
		return 1;
	__u64 cg = bpf_get_current_cgroup_id();
	__u32 *src = bpf_map_lookup_elem(&slim_containers, &cg);
	if (!src || (dst & cfg->overlay_mask) != cfg->overlay_net)
		return 1;
	if (policy_denies(*src, dst, port_nbo)) {
		count(SLIM_C_POLICY_DENIED);
		return 0;
	}
	return 1;
}

/* Containers' own sockets: the same policy, for connections over the overlay. */
SEC("cgroup/connect4")
int slim_container_connect4(struct bpf_sock_addr *ctx)
{
	return container_may_connect(ctx->user_ip4, (__u16)ctx->user_port);
}

/* Whether a is in the IPv6 overlay's /96 (none configured: no). */
static __always_inline int in_overlay6(const struct slim_config *cfg, __u32 a0, __u32 a1, __u32 a2)
{
	if ((cfg->overlay6[0] | cfg->overlay6[1] | cfg->overlay6[2]) == 0)
		return 0;
	return a0 == cfg->overlay6[0] && a1 == cfg->overlay6[1] && a2 == cfg->overlay6[2];
}

/*
 * The same for AF_INET6 sockets: a v4-mapped destination (::ffff:a.b.c.d)
 * is IPv4 on the wire, over the overlay, and gets the same check; so does
 * an IPv6 overlay address (the /96 and an IPv4 overlay address: the rules
 * name the IPv4 one). Other IPv6 destinations are not the overlay's.
 */
SEC("cgroup/connect6")
int slim_container_connect6(struct bpf_sock_addr *ctx)
{
	__u32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1], a2 = ctx->user_ip6[2];
	if (a0 == 0 && a1 == 0 && a2 == bpf_htonl(0xffff))
		return container_may_connect(ctx->user_ip6[3], (__u16)ctx->user_port);
	struct slim_config *cfg = config();
	if (cfg && in_overlay6(cfg, a0, a1, a2))
		return container_may_connect(ctx->user_ip6[3], (__u16)ctx->user_port);
	return 1;
}

/*
 * ---- AF_INET6 host sockets --------------------------------------------
 *
 * An app's AF_INET6 socket that carries IPv4 (a dual-stack listener, a
 * connect to a v4-mapped overlay address) gets an AF_INET6 host socket,
 * on v4-mapped host addresses: IPv4 on the wire, so sock_ops, ingress and
 * the MAC are those above. The kernel runs the *6 hooks for its calls,
 * which do what the *4 ones do, with the addresses v4-mapped; any address
 * that is not v4-mapped is refused (nothing Slim makes carries IPv6).
 */

#define V4MAPPED_WORD bpf_htonl(0xffff) /* ::ffff:a.b.c.d, third 32-bit word */

static __always_inline int user_v4mapped(const struct bpf_sock_addr *ctx)
{
	return ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 && ctx->user_ip6[2] == V4MAPPED_WORD;
}

static __always_inline int user_unspecified6(const struct bpf_sock_addr *ctx)
{
	return ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 && ctx->user_ip6[2] == 0 &&
	       ctx->user_ip6[3] == 0;
}

/* ip v4-mapped, or :: for 0 (the kernel's form for no address). */
static __always_inline void set_user_mapped(struct bpf_sock_addr *ctx, __u32 ip)
{
	ctx->user_ip6[0] = 0;
	ctx->user_ip6[1] = 0;
	ctx->user_ip6[2] = ip ? V4MAPPED_WORD : 0;
	ctx->user_ip6[3] = ip;
}

/* connect4 for AF_INET6 pool sockets, to v4-mapped overlay addresses. */
SEC("cgroup/connect6")
int slim_connect6(struct bpf_sock_addr *ctx)
{
	if (from_router(config()))
		return 1;
	struct slim_addr *host =
		pool_connect(ctx->sk, user_v4mapped(ctx), ctx->user_ip6[3], (__u16)ctx->user_port);
	if (!host)
		return 0;
	set_user_mapped(ctx, host->ip);
	ctx->user_port = host->port;
	return 1;
}

/* bind4 for AF_INET6 pool sockets: once, to :: and a port of the range. */
SEC("cgroup/bind6")
int slim_bind6(struct bpf_sock_addr *ctx)
{
	struct slim_config *cfg = config();
	if (from_router(cfg))
		return 1;
	return pool_may_bind(cfg, ctx->sk, user_unspecified6(ctx), ctx->user_port);
}

SEC("cgroup/getsockname6")
int slim_getsockname6(struct bpf_sock_addr *ctx)
{
	if (from_router(config()))
		return 1;
	__u32 port = ctx->user_port;
	set_user_mapped(ctx, overlay_self(ctx->sk, &port));
	ctx->user_port = port;
	return 1;
}

SEC("cgroup/getpeername6")
int slim_getpeername6(struct bpf_sock_addr *ctx)
{
	if (from_router(config()))
		return 1;
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return 1;
	__u32 port = ctx->user_port;
	set_user_mapped(ctx, overlay_peer(sk, &port));
	ctx->user_port = port;
	return 1;
}

/*
 * IPv6 packets to a host socket the router made: dropped, all of them.
 * Slim's host connections are IPv4 (v4-mapped on AF_INET6 sockets); an
 * AF_INET6 pool socket a container bound to :: and made listen would
 * otherwise take IPv6 connections, which slim_ingress does not look at.
 * A second program on the ingress hook, so slim_ingress stays IPv4's.
 */
SEC("cgroup_skb/ingress")
int slim_ingress6(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return 1;
	struct bpf_sock *sk = skb->sk;
	if (!sk || !bpf_sk_storage_get(&slim_socks, sk, 0, 0))
		return 1;
	count(SLIM_C_SYN_DROPPED);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
