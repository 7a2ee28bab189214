// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * SipHash-2-4 of two 64-bit words, written from the SipHash paper
 * (Aumasson and Bernstein, 2012). Add-rotate-xor only, so it runs in BPF
 * without crypto helpers; secure/mac.go is the same function in Go and a
 * test checks the two against the paper's reference vector.
 */
#ifndef SLIM_SIPHASH_H
#define SLIM_SIPHASH_H

#include <linux/types.h>

#define SLIM_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define SLIM_SIPROUND(v0, v1, v2, v3)                                                          \
	do {                                                                                   \
		v0 += v1;                                                                      \
		v1 = SLIM_ROTL(v1, 13);                                                        \
		v1 ^= v0;                                                                      \
		v0 = SLIM_ROTL(v0, 32);                                                        \
		v2 += v3;                                                                      \
		v3 = SLIM_ROTL(v3, 16);                                                        \
		v3 ^= v2;                                                                      \
		v0 += v3;                                                                      \
		v3 = SLIM_ROTL(v3, 21);                                                        \
		v3 ^= v0;                                                                      \
		v2 += v1;                                                                      \
		v1 = SLIM_ROTL(v1, 17);                                                        \
		v1 ^= v2;                                                                      \
		v2 = SLIM_ROTL(v2, 32);                                                        \
	} while (0)

/* One message word through two compression rounds. */
#define SLIM_SIPBLOCK(v0, v1, v2, v3, m)                                                       \
	do {                                                                                   \
		v3 ^= (m);                                                                     \
		SLIM_SIPROUND(v0, v1, v2, v3);                                                 \
		SLIM_SIPROUND(v0, v1, v2, v3);                                                 \
		v0 ^= (m);                                                                     \
	} while (0)

/* SipHash-2-4 of the 16-byte message m0 || m1 (little-endian words). */
static __always_inline __u64 slim_siphash(__u64 k0, __u64 k1, __u64 m0, __u64 m1)
{
	__u64 v0 = k0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = k0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = k1 ^ 0x7465646279746573ULL;

	SLIM_SIPBLOCK(v0, v1, v2, v3, m0);
	SLIM_SIPBLOCK(v0, v1, v2, v3, m1);
	SLIM_SIPBLOCK(v0, v1, v2, v3, 16ULL << 56); /* the length byte, no tail */
	v2 ^= 0xff;
	SLIM_SIPROUND(v0, v1, v2, v3);
	SLIM_SIPROUND(v0, v1, v2, v3);
	SLIM_SIPROUND(v0, v1, v2, v3);
	SLIM_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

#endif
