// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * cgroup/connect4 hook of secure mode. For now it allows every connect(2):
 * it exists to prove that the BPF build (bpf2go), embedding and loading work.
 * The policy that checks a container's connections arrives with secure mode.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("cgroup/connect4")
int slim_connect4(struct bpf_sock_addr *ctx)
{
	(void)ctx;
	return 1; /* allow */
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
