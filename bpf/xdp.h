/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel/user ABI of the XDP drop list (xdp.bpf.c): the tries user space writes, the per-entry
 * counters it reads, the drop event and the summary of SYNs --syn-flood-protect dropped (flowctl.h's
 * struct flowctl_suppressed_event). Decoded and encoded by packages/agent/src/datapath/abi-xdp.ts;
 * abi-xdp.test.ts compares its offsets with offsetof() from this header, compiled for the host.
 * Rules as flowctl.h: fixed-width fields ordered by size, explicit padding, event type in byte 0,
 * host order unless the comment says network order. Bump FCX_ABI_VERSION on any change. */
#ifndef __FLOWCTL_XDP_H
#define __FLOWCTL_XDP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define FCX_ABI_VERSION 2

/* Byte 0 of every record of the xdp_events ring; distinct from flowctl.h (0x01) and trace.h (0x1x). */
enum fcx_event_type {
	FCX_EV_DROP = 0x20,
	FCX_EV_SUPPRESSED = 0x21, /* struct flowctl_suppressed_event (flowctl.h): SYNs --syn-flood-protect dropped */
};

/* Index of the per-CPU xdp_counters array (u64 each). abi-xdp.ts XDP_COUNTERS lists them in order. */
enum fcx_counter {
	FCX_CNT_RINGBUF_FULL = 0, /* drop event lost: ring buffer full */
	FCX_CNT_DROPPED,          /* packets dropped (all entries) */
	FCX_CNT_EXPIRED,          /* packets that matched an expired entry (passed; user space removes it) */
	FCX_CNT_EVENTS_OVER_BUDGET, /* drop events not sent: over the per-CPU events_per_sec budget */
	FCX_CNT_EVENTS,           /* drop events written to the ring */
	FCX_CNT_SYN_DROPPED,      /* SYNs dropped by --syn-flood-protect (over their source's budget) */
	FCX_CNT_SUMMARIES,        /* FCX_EV_SUPPRESSED records written to the ring */
	FCX_CNT_MAX,
};

/* Which address matched the entry. */
enum fcx_match {
	FCX_MATCH_SOURCE = 1,
	FCX_MATCH_DESTINATION = 2,
};

/* drop4_bits: one bit per IPv4 /24, 64 to a word. */
#define FCX_BITS4_WORDS (1 << 18)

/* drop6_bits, drop6_mid, drop6_short: one bit per hash of an IPv6 /64 or /32, 64 to a word. */
#define FCX_BITS6_WORDS (1 << 16)
#define FCX_BITS6_SHIFT 10 /* a hash keeps its top 22 bits: FCX_BITS6_WORDS * 64 */

/* The bit of the /64 whose first two words (host order) are w0, w1; user space computes the same. */
static inline __u32 fcx_hash64(__u32 w0, __u32 w1)
{
	return ((w0 * 0x9E3779B1u) ^ w1) * 0x85EBCA77u >> FCX_BITS6_SHIFT;
}

/* The bit of the /32 whose first word (host order) is w0. */
static inline __u32 fcx_hash32(__u32 w0)
{
	return w0 * 0x85EBCA77u >> FCX_BITS6_SHIFT;
}

/* drop4 LPM key: prefixlen counts the address bits only. */
struct fcx_key4 {
	__u32 prefixlen;
	__u8 addr[4]; /* network order */
};

/* drop6 LPM key. */
struct fcx_key6 {
	__u32 prefixlen;
	__u8 addr[16]; /* network order */
};

/* Value of both tries. */
struct fcx_entry {
	__u64 expires_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) after which it no longer drops; 0 never */
	__u32 id;         /* chosen by user space: the key of drop_counts and of drop events */
	__u32 pad;
};

/* drop_counts: per-CPU value per entry id. */
struct fcx_count {
	__u64 packets;
	__u64 bytes;
};

/* drop_srcs LRU key: one aggregate per entry, source address and destination port, so that a
 * source's attempts at different services each show (a flood at one port stays one aggregate). */
struct fcx_src_key {
	__u32 id;
	__u8 ip_version;
	__u8 proto;
	__u16 dport; /* host order; 0 for ICMP */
	__u8 addr[16]; /* network order; IPv4 in the first 4 bytes */
};

struct fcx_src_value {
	__u64 full_ns;       /* a bucket of one event per event_interval_ns (budget.bpf.h's bucket_take) */
	__u64 packets;       /* dropped since the last event */
	__u64 bytes;
};

/* FCX_EV_DROP: a sample packet and what was dropped from its source to its destination port by
 * its entry since the last event of that aggregate (drop_srcs); one per event_interval_ns at most. */
struct fcx_drop_event {
	__u8 type; /* FCX_EV_DROP */
	__u8 abi_version;
	__u8 ip_version;
	__u8 proto;     /* IPPROTO_*; 0 when not parsed (non-first fragment) */
	__u8 tcp_flags; /* FIN 0x01 .. CWR 0x80 */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 match; /* enum fcx_match */
	__u64 ts_ns; /* bpf_ktime_get_ns() */
	__u64 packets; /* this packet included */
	__u64 bytes;
	__u32 entry_id;
	__u32 ifindex;
	__u16 sport; /* host order; 0 for ICMP */
	__u16 dport;
	__u32 pad;
	__u8 saddr[16]; /* network order; IPv4 in the first 4 bytes */
	__u8 daddr[16];
};

#endif /* __FLOWCTL_XDP_H */
