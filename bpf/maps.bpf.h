/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Maps of the TC datapath. Names are part of the contract with the loader (kernel.ts) and
 * policy-maps.ts; layouts are in flowctl.h and conn.bpf.h. */
#ifndef __FLOWCTL_MAPS_BPF_H
#define __FLOWCTL_MAPS_BPF_H

/* flow_event records; the loader sets the size (bpf_map__set_max_entries) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 23);
} events SEC(".maps");

/* enum flowctl_counter -> u64 per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOWCTL_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* struct flowctl_conn_key -> struct flowctl_conn (IPv6 connections that found no conns6 slot) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flowctl_conn_key);
	__type(value, struct flowctl_conn);
} flows SEC(".maps");

/* struct flowctl_conn4_key -> struct flowctl_conn (IPv4 connections that found no conns4 slot) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flowctl_conn4_key);
	__type(value, struct flowctl_conn);
} flows4 SEC(".maps");

/* slot index -> struct flowctl_conn4_slot (IPv4 connections; the set-associative table of
 * conn.bpf.h; flows4 takes what does not fit) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOWCTL_CONN4_SLOTS);
	/* An mmapable array's values start on a page; a plain one's 312 bytes into struct
	 * bpf_array (56 mod 64), which would split every slot's lines (conn.bpf.h). */
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct flowctl_conn4_slot);
} conns4 SEC(".maps");

/* slot index -> struct flowctl_conn6_slot (IPv6 connections; `flows` takes what does not fit) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOWCTL_CONN6_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE); /* page-aligned values, as conns4 */
	__type(key, __u32);
	__type(value, struct flowctl_conn6_slot);
} conns6 SEC(".maps");

/* conns4 slot index, then FLOWCTL_CONN4_SLOTS + conns6 slot index -> struct conn_counts per CPU
 * (the fast path's counts, conn.bpf.h): 2.5 MiB per possible CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOWCTL_CONN4_SLOTS + FLOWCTL_CONN6_SLOTS);
	__type(key, __u32);
	__type(value, struct conn_counts);
} conn_counts SEC(".maps");

/* struct flowctl_ipcache_key (LPM) -> struct flowctl_ipcache_value */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flowctl_ipcache_key);
	__type(value, struct flowctl_ipcache_value);
} ipcache SEC(".maps");

/* u32 identity -> u32 FLOWCTL_ENFORCE_* bits; absent = allow all */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} policy_enforce SEC(".maps");

/* struct flowctl_policy_key -> struct flowctl_policy_value */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20); /* NO_PREALLOC: memory only for rows in use */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flowctl_policy_key);
	__type(value, struct flowctl_policy_value);
} policy SEC(".maps");

/* 0 -> struct flowctl_config */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flowctl_config);
} config SEC(".maps");

/* 0 -> the event being built (too large for the 512-byte stack) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_event);
} scratch SEC(".maps");

/* 0 -> a connection entry that could not be stored in `flows` (map full): accounted here so the
 * code path is the same as for a map value (the verifier rejects variable-offset stack writes). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flowctl_conn);
} conn_scratch SEC(".maps");

/* Adds one to a counter: a per-CPU slot, so no atomic is needed. */
static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);

	if (v)
		*v += 1;
}

static __always_inline void count_n(__u32 which, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);

	if (v)
		*v += n;
}

#endif /* __FLOWCTL_MAPS_BPF_H */
