/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel-side layouts of the TC datapath's connection entries: the keys and values of the
 * `conns4`/`conns6` tables and the `flows4`/`flows` LRU maps. User space never decodes them (it
 * only counts entries); the datapath tests read a few fields, at offsets printed by
 * bpf/tests/abi_layout.c. Plain types only: the host compiler lays this out for that program. */
#ifndef __FLOWCTL_CONN_BPF_H
#define __FLOWCTL_CONN_BPF_H

/* `flows` key (IPv6 connections): the 5-tuple in canonical order (lower (address, port) first) so
 * both directions share an entry; per interface, because the same packet is a different
 * observation (and a different endpoint's policy) at the source and the destination veth. */
struct flowctl_conn_key {
	__u32 addr[2][4]; /* network order */
	__u32 ifindex;
	__u16 port[2]; /* host order; ICMP echo: the echo id on both sides */
	__u8 proto;
	__u8 ip_version;
	__u8 pad[2];
};

/* `flows4` key (IPv4 connections): the same canonical 5-tuple in 20 bytes instead of 44. */
struct flowctl_conn4_key {
	__u32 addr[2]; /* network order */
	__u32 ifindex;
	__u16 port[2];
	__u8 proto;
	__u8 pad[3];
};

_Static_assert(sizeof(struct flowctl_conn_key) == 44, "conn key size");
_Static_assert(sizeof(struct flowctl_conn4_key) == 20, "conn4 key size");

#define FLOWCTL_OPENER_GUESSED 0x80 /* with the side in bit 0 */
/* Never subject to policy: IPv6 neighbour discovery (ICMPv6 133-137), as Cilium exempts it, or
 * no pod could resolve its gateway once it has an egress policy. */
#define FLOWCTL_OPENER_NO_POLICY 0x40

#define FLOWCTL_STATE_SEEN0 0x1 /* an event was sent for side 0 -> 1 */
#define FLOWCTL_STATE_SEEN1 0x2
#define FLOWCTL_STATE_CLOSED 0x4
/* HTTP detection per direction (shifted left by the side): an HTTP start line was seen, or the
 * direction's first payload was not HTTP (then its payloads are not looked at again). */
#define FLOWCTL_STATE_HTTP0 0x8
#define FLOWCTL_STATE_NOHTTP0 0x20

/* What a later packet of a connection may skip the slow path with. Only the slow path writes it
 * (skip_record, each time it accounts a packet); the fast path reads nothing else. It holds in
 * the jiffy it was written in (the slow path read the precise clock then) and under that config
 * epoch; `mask` has per side (shifted left by the side) whether packets without payload may skip,
 * and whether packets with payload may too (not while L7 wants to see them). A packet carrying a
 * TCP flag outside flags[side] takes the slow path. */
#define SKIP_BARE0 0x1
#define SKIP_PAYLOAD0 0x4
struct conn_skip {
	__u64 epoch;
	__u64 jiffies;
	__u16 flags[2];
	__u8 mask;
	__u8 pad[3];
};

/* One direction of a connection: what each of its packets writes. */
struct flowctl_conn_dir {
	__u64 packets;
	__u64 bytes; /* L4 payload (see struct flow_event) */
	__u64 last_seen_ns; /* the connection's last_seen is the later of its two directions' */
};

/* The fast path's counts of a connection in a conns4/conns6 slot on one CPU (`conn_counts`, a
 * per-CPU array indexed by struct flowctl_conn's `counts`): an add to this CPU's copy needs no
 * atomic instruction, which two counters shared by the CPUs cost on every packet. A connection's
 * totals are its entry's dir counters (the slow path's) plus these summed over every CPU. */
struct conn_counts {
	__u64 packets[2];
	__u64 bytes[2];
};

/* A connection. dir[] and the other arrays are indexed by the sending side of the canonical key.
 * Times are bpf_ktime_get_ns(); between events last_seen_ns has the resolution of a jiffy.
 * Laid out for the cache: the two directions are often handled on two CPUs, and a line written
 * by both moves between them; so the skip record (read by every packet, written by the slow path)
 * shares the slot's first line with its key, the fast path writes nothing in the slot (its counts
 * are per CPU), and each direction's slow-path state starts a line of its own (offsets 64 and 128
 * of a conns4 slot, 128 and 192 of a conns6 one). */
struct flowctl_conn {
	struct conn_skip skip;
	__u64 epoch; /* config epoch of identity[] and the verdict; ~0 = not evaluated */
	__u32 flags_seen[2];
	struct flowctl_conn_dir dir0;
	__u64 first_seen_ns;
	__u64 last_emit_ns;
	__u32 identity[2];
	__u32 state; /* FLOWCTL_STATE_* */
	__u32 policy_ref;
	__u16 drop_reason;
	__u8 verdict;
	__u8 opener; /* side that opened the connection | FLOWCTL_OPENER_GUESSED | _NO_POLICY */
	__u8 policy_direction;
	__u8 pad[3];
	struct flowctl_conn_dir dir1;
	__u32 counts; /* 1 + its index in conn_counts (a slot's); 0: none (LRU map, scratch) */
	__u8 pad2[4];
};

/* `conns4`/`conns6`: connections in a preallocated array used as a 4-way set-associative table,
 * indexed by a hash computed in the program (conns.bpf.h): array lookups are inlined by the
 * verifier, so an established packet makes no helper call. A connection whose set is full of
 * live ones goes to the family's LRU map (`flows4`, `flows`) instead. */
#define FLOWCTL_CONN4_SLOTS 65536 /* power of two */
#define FLOWCTL_CONN6_SLOTS 16384
#define FLOWCTL_CONN_WAYS 4
struct flowctl_conn4_slot {
	__u32 gen; /* 0: never used; bumped (compare-and-swap) each time the slot is taken */
	struct flowctl_conn4_key key;
	struct flowctl_conn conn;
	__u8 pad[32];
};

struct flowctl_conn6_slot {
	__u32 gen;
	struct flowctl_conn_key key;
	__u8 pad0[40];
	struct flowctl_conn conn;
	__u8 pad[32];
};

_Static_assert(__builtin_offsetof(struct flowctl_conn4_slot, key) == 4, "conns4: key after gen");
_Static_assert(__builtin_offsetof(struct flowctl_conn4_slot, conn.dir0) == 64, "conns4: side 0 starts line 1");
_Static_assert(__builtin_offsetof(struct flowctl_conn4_slot, conn.dir1) == 128, "conns4: side 1 starts line 2");
_Static_assert(sizeof(struct flowctl_conn4_slot) == 192, "conns4: a slot is three cache lines");
_Static_assert(__builtin_offsetof(struct flowctl_conn6_slot, key) == 4, "conns6: key after gen");
_Static_assert(__builtin_offsetof(struct flowctl_conn6_slot, conn.dir0) == 128, "conns6: side 0 starts line 2");
_Static_assert(__builtin_offsetof(struct flowctl_conn6_slot, conn.dir1) == 192, "conns6: side 1 starts line 3");
_Static_assert(sizeof(struct flowctl_conn6_slot) == 256, "conns6: a slot is four cache lines");

#endif /* __FLOWCTL_CONN_BPF_H */
