// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The baseline of bench/bpf-cost.ts: a TC program that does nothing, so the figures separate
 * the test_run harness's own per-run cost from flowctl's. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int bench_nop(struct __sk_buff *skb)
{
	return 0;
}

/* Baselines of bench/xdp-drop.ts: an XDP program that passes everything (test_run), and one
 * that drops everything (the packet rate the veth setup itself allows). */
SEC("xdp")
int bench_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int bench_xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}
