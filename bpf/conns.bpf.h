/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The connection tables (layouts in conn.bpf.h): finding a connection by its canonical key and
 * storing a new one. IPv4 connections live in `conns4`, or in `flows4` when their set is full;
 * IPv6 ones in `conns6`, or in `flows`. */
#ifndef __FLOWCTL_CONNS_BPF_H
#define __FLOWCTL_CONNS_BPF_H

/* Seeds the table hashes; the loader sets a random one so that peers cannot aim at one set. */
const volatile __u32 conn4_seed = 0;

/* A multiplicative hash of a connection's canonical addresses (one word each), ports and the rest
 * of its key, inline (no helper call). */
static __always_inline __u32 conn_hash(__u32 a0, __u32 a1, __u32 ports, __u32 rest)
{
	__u32 h = conn4_seed;

	h = (h ^ a0) * 0x9E3779B1u;
	h = (h ^ a1) * 0x85EBCA77u;
	h = (h ^ ports) * 0xC2B2AE3Du;
	h = (h ^ rest) * 0x27D4EB2Fu;
	return h ^ (h >> 15);
}

static __always_inline __u32 rol32(__u32 x, int n)
{
	return (x << n) | (x >> (32 - n));
}

/* An IPv6 address in one word for conn_hash (rotated, so that equal words do not cancel). */
static __always_inline __u32 fold6(const __u32 *a)
{
	return a[0] ^ rol32(a[1], 8) ^ rol32(a[2], 16) ^ rol32(a[3], 24);
}

/* The first slot of a key's set in conns4 and conns6. */
static __always_inline __u32 conn4_set(const struct flowctl_conn4_key *k)
{
	__u32 h = conn_hash(k->addr[0], k->addr[1], k->port[0] | (__u32)k->port[1] << 16,
			    k->ifindex ^ ((__u32)k->proto << 24));

	return (h & (FLOWCTL_CONN4_SLOTS - 1)) & ~(__u32)(FLOWCTL_CONN_WAYS - 1);
}

static __always_inline __u32 conn6_set(const struct flowctl_conn_key *k)
{
	__u32 h = conn_hash(fold6(k->addr[0]), fold6(k->addr[1]), k->port[0] | (__u32)k->port[1] << 16,
			    k->ifindex ^ ((__u32)k->proto << 24));

	return (h & (FLOWCTL_CONN6_SLOTS - 1)) & ~(__u32)(FLOWCTL_CONN_WAYS - 1);
}

/* Both tables share their code: a slot is a u32 `gen`, then the key, whose `words` u32s are
 * compared one by one. That is a key compare because keys are always built in a zeroed struct
 * (padding zero) and their sizes are whole words: */
_Static_assert(sizeof(struct flowctl_conn4_key) % 4 == 0 && sizeof(struct flowctl_conn_key) % 4 == 0,
	       "keys compare as whole u32 words");

static __always_inline int slot_key_eq(const __u32 *s, const void *key, int words)
{
	const __u32 *k = key;
	int i;

	for (i = 0; i < words; i++)
		if (s[1 + i] != k[i])
			return 0;
	return 1;
}

/* The slot of `map` holding key `k` in the set starting at `base` (its index in *at), or NULL. */
static __always_inline __u32 *slot_find(void *map, __u32 base, const void *k, int words, __u32 *at)
{
	__u32 idx, *s;
	int i;

	for (i = 0; i < FLOWCTL_CONN_WAYS; i++) {
		idx = base + i;
		s = bpf_map_lookup_elem(map, &idx);
		if (s && s[0] && slot_key_eq(s, k, words)) {
			*at = idx;
			return s;
		}
	}
	return NULL;
}

/* Where a slot's fast-path counts are in conn_counts. */
#define COUNTS4(idx) (idx)
#define COUNTS6(idx) (FLOWCTL_CONN4_SLOTS + (idx))

/* The connection of key `k`; *counts is 1 + its index in conn_counts, or 0 (not in a slot). */
static __always_inline struct flowctl_conn *conn4_find(const struct flowctl_conn4_key *k, __u32 *counts)
{
	__u32 idx = 0;
	struct flowctl_conn4_slot *s = (void *)slot_find(&conns4, conn4_set(k), k, sizeof(*k) / 4, &idx);

	*counts = s ? COUNTS4(idx) + 1 : 0;
	return s ? &s->conn : bpf_map_lookup_elem(&flows4, k);
}

static __always_inline struct flowctl_conn *conn6_find(const struct flowctl_conn_key *k, __u32 *counts)
{
	__u32 idx = 0;
	struct flowctl_conn6_slot *s = (void *)slot_find(&conns6, conn6_set(k), k, sizeof(*k) / 4, &idx);

	*counts = s ? COUNTS6(idx) + 1 : 0;
	return s ? &s->conn : bpf_map_lookup_elem(&flows, k);
}

/* The IPv4 key of a connection key. */
static __always_inline void conn4_key(const struct flowctl_conn_key *k, struct flowctl_conn4_key *k4)
{
	k4->addr[0] = k->addr[0][0];
	k4->addr[1] = k->addr[1][0];
	k4->ifindex = k->ifindex;
	k4->port[0] = k->port[0];
	k4->port[1] = k->port[1];
	k4->proto = k->proto;
}

static __always_inline struct flowctl_conn *conn_find(const struct flowctl_conn_key *k)
{
	struct flowctl_conn4_key k4 = {};
	__u32 counts;

	if (k->ip_version != 4)
		return conn6_find(k, &counts);
	conn4_key(k, &k4);
	return conn4_find(&k4, &counts);
}

/* Enough for any machine's possible CPUs: bpf_map_lookup_percpu_elem ends the walk earlier. */
#define MAX_CPUS 1024

/* Zeroes the fast-path counts at `counts` (1 + index) on every CPU, for a new connection. */
static __always_inline void counts_clear(__u32 counts)
{
	__u32 idx = counts - 1, cpu;
	struct conn_counts *v;

	for (cpu = 0; cpu < MAX_CPUS; cpu++) {
		v = bpf_map_lookup_percpu_elem(&conn_counts, &idx, cpu);
		if (!v)
			break;
		__builtin_memset(v, 0, sizeof(*v));
	}
}

/* Connection c's totals: its entry's counters plus its fast-path counts on every CPU. */
static __always_inline void conn_totals(const struct flowctl_conn *c, struct conn_counts *t)
{
	__u32 idx = c->counts - 1, cpu;
	struct conn_counts *v;

	t->packets[0] = c->dir0.packets;
	t->packets[1] = c->dir1.packets;
	t->bytes[0] = c->dir0.bytes;
	t->bytes[1] = c->dir1.bytes;
	for (cpu = 0; c->counts && cpu < MAX_CPUS; cpu++) {
		v = bpf_map_lookup_percpu_elem(&conn_counts, &idx, cpu);
		if (!v)
			break;
		t->packets[0] += v->packets[0];
		t->packets[1] += v->packets[1];
		t->bytes[0] += v->bytes[0];
		t->bytes[1] += v->bytes[1];
	}
}

static __always_inline struct flowctl_conn_dir *conn_dir(struct flowctl_conn *c, __u32 side)
{
	return side ? &c->dir1 : &c->dir0;
}

static __always_inline __u64 conn_last_seen(const struct flowctl_conn *c)
{
	return c->dir0.last_seen_ns > c->dir1.last_seen_ns ? c->dir0.last_seen_ns : c->dir1.last_seen_ns;
}

/* Idle times after which a slot may be given to a new connection of its set (then the old one,
 * should it speak again, starts over as a new connection, as after an LRU eviction): the conntrack
 * timeouts of Cilium for closed TCP and for non-TCP, and ten minutes for open TCP. */
#define CONN_CLOSED_IDLE_NS (10ULL * 1000000000ULL)
#define CONN_DGRAM_IDLE_NS (60ULL * 1000000000ULL)
#define CONN_TCP_IDLE_NS (600ULL * 1000000000ULL)

/* A TCP attempt whose handshake never completed (its opener never sent an ACK) is reclaimed
 * first: after as long idle as a closed connection. */
#define CONN_HALFOPEN_IDLE_NS CONN_CLOSED_IDLE_NS

static __always_inline int conn_reclaimable(const struct flowctl_conn *c, __u8 proto, __u64 now)
{
	__u64 last = conn_last_seen(c), idle = now > last ? now - last : 0;

	if (c->state & FLOWCTL_STATE_CLOSED)
		return idle >= CONN_CLOSED_IDLE_NS;
	if (proto == IPPROTO_TCP && !(c->opener & FLOWCTL_OPENER_GUESSED) &&
	    !(c->flags_seen[c->opener & 1] & TCP_ACK))
		return idle >= CONN_HALFOPEN_IDLE_NS;
	return idle >= (proto == IPPROTO_TCP ? CONN_TCP_IDLE_NS : CONN_DGRAM_IDLE_NS);
}

/* Puts `init` for key `k` into the set at `base` of a table whose slots hold the connection at
 * `conn_off` and the key's proto at `proto_off`: in place when the key is there already (port
 * reuse), else in a free or reclaimable slot (`counter` counts slots taken into use). 0: stored;
 * 1: another CPU stored it first; -1: no slot. */
static __always_inline int slot_store(void *map, __u32 base, const void *k, int words, int conn_off,
				      int proto_off, __u32 counter, __u32 counts_base,
				      const struct flowctl_conn *init, __u32 reuse)
{
	__u32 idx = 0, g, *s = slot_find(map, base, k, words, &idx);
	struct flowctl_conn *c;
	const __u32 *kw = k;
	__u64 now;
	int i, j;

	if (s) {
		if (!reuse)
			return 1;
		c = (void *)s + conn_off;
		__builtin_memcpy(c, init, sizeof(*init));
		c->counts = counts_base + idx + 1;
		counts_clear(c->counts);
		return 0;
	}
	if (reuse)
		return -1; /* the closed connection is in the LRU map: replaced there */
	now = bpf_ktime_get_ns();
	for (i = 0; i < FLOWCTL_CONN_WAYS; i++) {
		idx = base + i;
		s = bpf_map_lookup_elem(map, &idx);
		if (!s)
			continue;
		g = s[0];
		if (g && !conn_reclaimable((void *)s + conn_off, ((__u8 *)s)[proto_off], now))
			continue;
		/* Claim; the loser of a race tries the next slot. The key is written last: until
		 * then lookups of the old key may still find the slot (as with LRU reuse). */
		if (__sync_val_compare_and_swap(&s[0], g, g + 1 ? g + 1 : 1) != g)
			continue;
		c = (void *)s + conn_off;
		__builtin_memcpy(c, init, sizeof(*init));
		c->counts = counts_base + idx + 1;
		counts_clear(c->counts);
		for (j = 0; j < words; j++)
			s[1 + j] = kw[j];
		if (!g)
			count(counter);
		return 0;
	}
	return -1;
}

/* Stores a new connection `init` under `k`: its table's set, else the family's LRU map (NOEXIST:
 * another CPU may have created it meanwhile; then theirs is used). 0 when stored. */
static __always_inline int conn_store(const struct flowctl_conn_key *k, const struct flowctl_conn *init,
				      __u32 reuse)
{
	struct flowctl_conn4_key k4 = {};
	__u64 flags = reuse ? BPF_ANY : BPF_NOEXIST;
	int r;

	if (k->ip_version != 4) {
		r = slot_store(&conns6, conn6_set(k), k, sizeof(*k) / 4,
			       __builtin_offsetof(struct flowctl_conn6_slot, conn),
			       __builtin_offsetof(struct flowctl_conn6_slot, key.proto), FLOWCTL_CNT_CONN6_SLOTS,
			       COUNTS6(0), init, reuse);
		if (r >= 0)
			return r;
		return bpf_map_update_elem(&flows, k, init, flags) == 0 ? 0 : 1;
	}
	conn4_key(k, &k4);
	r = slot_store(&conns4, conn4_set(&k4), &k4, sizeof(k4) / 4,
		       __builtin_offsetof(struct flowctl_conn4_slot, conn),
		       __builtin_offsetof(struct flowctl_conn4_slot, key.proto), FLOWCTL_CNT_CONN4_SLOTS,
		       COUNTS4(0), init, reuse);
	if (r >= 0)
		return r;
	return bpf_map_update_elem(&flows4, &k4, init, flags) == 0 ? 0 : 1;
}

#endif /* __FLOWCTL_CONNS_BPF_H */
