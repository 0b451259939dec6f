/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel/user ABI of the TC datapath (flowctl.bpf.c): the flow event and the layouts of the maps
 * user space writes. Decoded and encoded by packages/agent/src/datapath/abi.ts and policy-maps.ts;
 * bpf/tests/abi_layout.c prints sizeof/offsetof of everything here so abi.test.ts can compare.
 * Rules: fixed-width fields ordered by size, explicit padding, event type in byte 0. Bump
 * FLOWCTL_ABI_VERSION on any change. Multi-byte integers are host order (little endian) unless
 * the comment says network order. */
#ifndef __FLOWCTL_H
#define __FLOWCTL_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define FLOWCTL_ABI_VERSION 3

/* Compile-time cap of the max_payload knob: the event buffer is sized for it. */
#define FLOWCTL_MAX_PAYLOAD 1024

/* Byte 0 of every record of the `events` ring. trace.h uses 0x10.. for its own ring. */
enum flowctl_event_type {
	FLOWCTL_EV_FLOW = 1,
};

enum flowctl_obs_point {
	FLOWCTL_OBS_FROM_ENDPOINT = 1, /* TC ingress of the host-side veth (pod egress) */
	FLOWCTL_OBS_TO_ENDPOINT = 2,   /* TC egress of the host-side veth (pod ingress) */
};

/* Same numbers as FlowReason in packages/agent/src/datapath/events.ts. */
enum flowctl_reason {
	FLOWCTL_REASON_NEW = 1,
	FLOWCTL_REASON_FLAGS = 2,
	FLOWCTL_REASON_CLOSE = 3,
	FLOWCTL_REASON_STATS = 4,
	FLOWCTL_REASON_SAMPLE = 5,
	FLOWCTL_REASON_POLICY = 6,
	FLOWCTL_REASON_L7 = 7,
};

enum flowctl_l7 {
	FLOWCTL_L7_NONE = 0,
	FLOWCTL_L7_DNS = 1,
	FLOWCTL_L7_HTTP = 2,
};

/* flow.Verdict numbers. */
enum flowctl_verdict {
	FLOWCTL_VERDICT_FORWARDED = 1,
	FLOWCTL_VERDICT_DROPPED = 2,
	FLOWCTL_VERDICT_AUDIT = 4,
};

#define FLOWCTL_DROP_POLICY_DENIED 133 /* flow.DropReason POLICY_DENIED */

/* flow.TrafficDirection numbers; also the `direction` of a policy key. */
enum flowctl_direction {
	FLOWCTL_DIR_INGRESS = 1,
	FLOWCTL_DIR_EGRESS = 2,
};

enum flowctl_is_reply {
	FLOWCTL_REPLY_NO = 0,
	FLOWCTL_REPLY_YES = 1,
	FLOWCTL_REPLY_UNKNOWN = 2, /* TCP connection first seen mid-stream */
};

/* Index of the per-CPU `counters` array (u64 each). abi.ts COUNTER_NAMES lists them in order. */
enum flowctl_counter {
	FLOWCTL_CNT_RINGBUF_FULL = 0, /* event lost: ring buffer full */
	FLOWCTL_CNT_FLOW_MAP_FULL,    /* connection state not stored (event sent unaggregated) */
	FLOWCTL_CNT_MALFORMED,        /* truncated/garbage IP packet, passed untouched */
	FLOWCTL_CNT_PACKETS,          /* packets seen */
	FLOWCTL_CNT_EVENTS,           /* events written to the ring */
	FLOWCTL_CNT_POLICY_DROPPED,   /* packets dropped by policy */
	FLOWCTL_CNT_POLICY_AUDIT,     /* packets policy would have dropped (audit mode) */
	FLOWCTL_CNT_FRAGMENTS,        /* non-first IP fragments (no L4 header; passed) */
	FLOWCTL_CNT_NON_IP,           /* ARP and other non-IP frames (passed) */
	FLOWCTL_CNT_L7_TRUNCATED,     /* L7 payloads longer than max_payload (snippet cut) */
	FLOWCTL_CNT_CONN4_SLOTS,      /* `conns4` slots taken into use (never freed, only reused) */
	FLOWCTL_CNT_CONN6_SLOTS,      /* `conns6` slots taken into use (never freed, only reused) */
	FLOWCTL_CNT_MAX,
};

/* FLOWCTL_EV_FLOW. The record on the ring is the header (offsetof(payload) bytes) followed by
 * captured_len payload bytes: only the used length is sent. Addresses in network order, IPv4 in
 * the first 4 bytes; ports in host order. Counters are this packet's direction (packets, bytes)
 * and the opposite one (reply_*). */
struct flow_event {
	__u8 type; /* FLOWCTL_EV_FLOW */
	__u8 abi_version;
	__u8 obs_point;  /* enum flowctl_obs_point */
	__u8 reason;     /* enum flowctl_reason */
	__u8 verdict;    /* enum flowctl_verdict */
	__u8 ip_version; /* 4 or 6 */
	__u8 proto;      /* IPPROTO_* */
	__u8 l7;         /* enum flowctl_l7 */
	__u64 ts_ns;     /* bpf_ktime_get_ns() */
	__u64 packets;
	__u64 bytes;
	__u64 reply_packets;
	__u64 reply_bytes;
	__u64 first_seen_ns;
	__u64 last_seen_ns;
	__u32 ifindex;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 policy_ref;  /* CompiledPolicy ruleRef that decided, 0 none */
	__u32 payload_len; /* L4 payload length of the packet */
	__u32 tcp_seq;     /* this packet's TCP sequence number, host order; 0 for non-TCP */
	__u32 tcp_ack;     /* its acknowledgement number, host order; 0 for non-TCP */
	__u32 src_ip[4];
	__u32 dst_ip[4];
	__u16 src_port;
	__u16 dst_port;
	__u16 tcp_flags;      /* this packet; FIN 0x01 .. CWR 0x80, NS 0x100 */
	__u16 tcp_flags_seen; /* union in this direction so far */
	__u16 drop_reason;    /* flow.DropReason, 0 none */
	__u16 captured_len;   /* payload bytes that follow */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 is_reply;         /* enum flowctl_is_reply */
	__u8 policy_direction; /* enum flowctl_direction of the decision, 0 none */
	__u8 eth_src[6];
	__u8 eth_dst[6];
	__u8 payload[FLOWCTL_MAX_PAYLOAD];
};

#define FLOWCTL_FLOW_EVENT_HDR_LEN 152 /* offsetof(struct flow_event, payload) */

/* `ipcache` LPM trie key. prefixlen counts the 32 bits of `family` plus the address prefix, so
 * IPv4 and IPv6 share one trie without matching each other. */
struct flowctl_ipcache_key {
	__u32 prefixlen;
	__u32 family; /* 4 or 6 */
	__u8 addr[16];  /* network order; IPv4 in the first 4 bytes */
};

struct flowctl_ipcache_value {
	__u32 identity;
	__u32 pad;
};

/* `policy_enforce`: u32 identity -> u32 of these bits. */
#define FLOWCTL_ENFORCE_INGRESS 1
#define FLOWCTL_ENFORCE_EGRESS 2

/* `policy` key: peer_identity, port and proto 0 mean any (see contracts.md "Policy maps"). */
struct flowctl_policy_key {
	__u32 endpoint_identity;
	__u32 peer_identity;
	__u16 port; /* host order */
	__u8 proto;
	__u8 direction; /* enum flowctl_direction, from the endpoint's view */
};

struct flowctl_policy_value {
	__u32 rule_ref;
	__u8 deny;
	__u8 pad[3];
};

/* `config` ARRAY, one entry. epoch changes whenever the ipcache or the policy maps change (user
 * space bumps it last); connection entries cache identities and verdict per epoch. */
struct flowctl_config {
	__u64 epoch;
	__u64 policy_revision;
};

/* `flows` LRU key (IPv6 connections): the 5-tuple in canonical order (lower (address, port)
 * first) so both directions share an entry; per interface, because the same packet is a different
 * observation (and a different endpoint's policy) at the source and the destination veth. */
struct flowctl_conn_key {
	__u32 addr[2][4];
	__u32 ifindex;
	__u16 port[2]; /* ICMP echo: the echo id on both sides */
	__u8 proto;
	__u8 ip_version;
	__u8 pad[2];
};

/* `flows4` LRU key (IPv4 connections): the same canonical 5-tuple in 20 bytes instead of 44, since
 * the hash and compare of the key are most of an established packet's cost. */
struct flowctl_conn4_key {
	__u32 addr[2]; /* network order */
	__u32 ifindex;
	__u16 port[2];
	__u8 proto;
	__u8 pad[3];
};

#define FLOWCTL_OPENER_GUESSED 0x80 /* with the side in bit 0 */
/* Never subject to policy: IPv6 neighbour discovery (ICMPv6 133-137), as Cilium exempts it, or
 * no pod could resolve its gateway once it has an egress policy. */
#define FLOWCTL_OPENER_NO_POLICY 0x40

#define FLOWCTL_STATE_SEEN0 0x1 /* an event was sent for side 0 -> 1 */
#define FLOWCTL_STATE_SEEN1 0x2
#define FLOWCTL_STATE_CLOSED 0x4
/* HTTP detection per direction (shifted left by the side): an HTTP start line was seen, or the
 * direction's first payload was not HTTP, so no packet of it is looked at again (bulk transfers
 * and TLS pay nothing). A connection first seen mid-body is not inspected for HTTP. */
#define FLOWCTL_STATE_HTTP0 0x8
#define FLOWCTL_STATE_NOHTTP0 0x20

/* One direction of a connection: what each of its packets writes. */
struct flowctl_conn_dir {
	__u64 packets;
	__u64 bytes;
	__u64 last_seen_ns; /* the connection's last_seen is the later of its two directions' */
};

/* `flows`, `flows4` and `conns4` connection state. dir[] and the other arrays are indexed by the
 * sending side of the canonical key. Times are bpf_ktime_get_ns(); between events last_seen_ns
 * has the resolution of a jiffy.
 *
 * Laid out for the cache: the two directions of a connection are often handled on two CPUs (a
 * veth's receive path runs on the sender's CPU), and a cache line written by one CPU and read or
 * written by the other moves between them on every packet, which cost iperf3 ~5% of its
 * throughput (more than the program itself). So what every packet reads, and only the slow path
 * writes, comes first (in a conns4 slot it shares the first line with the slot's 24-byte head);
 * each direction's counters start a line of their own (offsets 64 and 128 of a conns4 slot; in the
 * LRU hash maps, whose values are only 8-aligned, they are at least 64 bytes apart, so never share
 * a line with each other). */
struct flowctl_conn {
	/* read by every packet, written on the slow path: 40 bytes */
	__u64 epoch; /* config epoch of identity[] and the verdict; ~0 = not evaluated */
	__u64 clock_jiffies; /* jiffies when the precise clock was last read for this connection */
	__u32 flags_seen[2];
	__u32 state; /* FLOWCTL_STATE_* */
	__u8 verdict;
	__u8 opener; /* side that opened the connection | FLOWCTL_OPENER_GUESSED | _NO_POLICY */
	__u8 policy_direction;
	__u8 cached; /* a CPU's conn4_cache may hold packets of it not yet in dir0/dir1 */
	__u32 policy_ref;
	__u16 drop_reason;
	__u8 pad1[2];
	/* side 0's counters, then what only the slow path reads */
	struct flowctl_conn_dir dir0;
	__u64 first_seen_ns;
	__u64 last_emit_ns;
	__u32 identity[2];
	__u8 pad2[16];
	/* side 1's counters, alone in their line (the conns4 slot pads it) */
	struct flowctl_conn_dir dir1;
};

/* `conns4`: IPv4 connections in a preallocated array used as a 4-way set-associative table,
 * indexed by a hash of the key computed in the program. Array lookups are inlined by the
 * verifier, so an established packet costs no helper call (an LRU hash lookup is three calls and
 * returns, expensive under the SRSO mitigation, and was half of the program's cost under iperf3).
 * A connection whose set is full of live ones goes to the `flows4` LRU map instead. */
#define FLOWCTL_CONN4_SLOTS 65536 /* power of two */
#define FLOWCTL_CONN4_WAYS 4
struct flowctl_conn4_slot {
	__u32 gen; /* 0: never used; bumped (compare-and-swap) each time the slot is taken */
	struct flowctl_conn4_key key;
	struct flowctl_conn conn;
	__u8 pad[40]; /* side 1's counters alone in the slot's third line */
};

_Static_assert(__builtin_offsetof(struct flowctl_conn4_slot, key) == 4, "conns4: key after gen");
_Static_assert(__builtin_offsetof(struct flowctl_conn4_slot, conn.dir0) == 64, "conns4: side 0 starts line 1");
_Static_assert(__builtin_offsetof(struct flowctl_conn4_slot, conn.dir1) == 128, "conns4: side 1 starts line 2");
_Static_assert(sizeof(struct flowctl_conn4_slot) == 192, "conns4: a slot is three cache lines");

/* `conns6`: the same table for IPv6 connections (the `flows` LRU map takes what does not fit).
 * The 44-byte key fills the slot's first line, the connection's read-mostly head the second, and
 * each direction's counters a line of their own: an established packet touches three lines and
 * makes no helper call. */
#define FLOWCTL_CONN6_SLOTS 16384 /* power of two */
#define FLOWCTL_CONN6_WAYS 4
struct flowctl_conn6_slot {
	__u32 gen; /* as in conns4 */
	struct flowctl_conn_key key;
	__u8 pad0[40]; /* the connection's head alone in the second line */
	struct flowctl_conn conn;
	__u8 pad[40]; /* side 1's counters alone in the fourth line */
};

_Static_assert(__builtin_offsetof(struct flowctl_conn6_slot, key) == 4, "conns6: key after gen, as in conns4");
_Static_assert(__builtin_offsetof(struct flowctl_conn6_slot, conn) == 88, "conns6: head in line 1");
_Static_assert(__builtin_offsetof(struct flowctl_conn6_slot, conn.dir0) == 128, "conns6: side 0 starts line 2");
_Static_assert(__builtin_offsetof(struct flowctl_conn6_slot, conn.dir1) == 192, "conns6: side 1 starts line 3");
_Static_assert(sizeof(struct flowctl_conn6_slot) == 256, "conns6: a slot is four cache lines");

/* `conn4_cache` (a value per CPU, at the CPU's number): each CPU's recent conns4 connections,
 * direct-mapped by their ports, and the packets each CPU counted for them since: an established
 * IPv4 packet whose connection is here adds to two private counters, without the hash, the slot
 * lookup or the atomic adds of the shared slot (the atomics alone were ~12% of the program under
 * iperf3).
 *
 * An entry is good for one jiffy and one config epoch; it holds what the fast path would check in
 * the slot (`ok`: bit `side`, packets without payload may be counted here; bit 2 + `side`, packets
 * with payload too; `flags`: TCP flags already seen per side, SYN left out so that a SYN always
 * takes the full path). The first established packet of a jiffy fills it, after adding the pending
 * counts of the entry it replaces to that one's slot (if the slot still holds the same connection:
 * key and first_seen_ns) and to the `packets` counter. Events add every CPU's pending counts of
 * their connection (flagged by `cached`), and user space adds them to the `packets` counter, so
 * counts are as exact as without the cache. Pending counts are at most a jiffy's worth, hence
 * 32 bits; jiffies and epoch are compared on their low 32 bits. */
#define FLOWCTL_CONN4_CACHE_WAYS 8 /* power of two */
struct flowctl_conn4_cached {
	struct flowctl_conn4_key key; /* ifindex 0: empty */
	__u32 slot;                   /* conns4 index */
	__u32 jiffies;                /* low 32 bits */
	__u32 epoch;                  /* low 32 bits of the config epoch */
	__u16 flags[2];
	__u8 ok;
	__u8 pad[3];
	__u32 packets[2]; /* pending, by side; at most a jiffy's worth */
	__u32 bytes[2];
	__u64 first_seen_ns; /* which connection of that key (ports are reused); not on the fast path */
};

/* One CPU's entries: the value of `conn4_cache` at the CPU's number. */
struct flowctl_conn4_cache {
	struct flowctl_conn4_cached e[FLOWCTL_CONN4_CACHE_WAYS];
};

/* One cache line per entry: the map is mmapable, so its values start on a page. */
_Static_assert(sizeof(struct flowctl_conn4_cached) == 64, "conn4_cache entry size");

#endif /* __FLOWCTL_H */
