/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel/user ABI of the TC datapath (flowctl.bpf.c): the flow event, the counters and the layouts
 * of the maps user space writes (the connection entries it never reads are in conn.bpf.h). Decoded and encoded by packages/agent/src/datapath/abi.ts and policy-maps.ts;
 * bpf/tests/abi_layout.c prints sizeof/offsetof of everything here so abi.test.ts can compare.
 * Rules: fixed-width fields ordered by size, explicit padding, event type in byte 0. Bump
 * FLOWCTL_ABI_VERSION on any change. Multi-byte integers are host order (little endian) unless
 * the comment says network order. */
#ifndef __FLOWCTL_H
#define __FLOWCTL_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define FLOWCTL_ABI_VERSION 7

/* Compile-time cap of the max_payload knob: the event buffer is sized for it. */
#define FLOWCTL_MAX_PAYLOAD 1024

/* Byte 0 of every record of the `events` ring. trace.h uses 0x10.. for its own ring. */
enum flowctl_event_type {
	FLOWCTL_EV_FLOW = 1,
	FLOWCTL_EV_SUPPRESSED = 2,
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
#define FLOWCTL_DROP_RATE_LIMITED 198  /* flow.DropReason DROP_RATE_LIMITED (--syn-flood-protect) */
#define FLOWCTL_DROP_POLICY_DENY 181   /* flow.DropReason POLICY_DENY: the drop list (an isolated endpoint at TC) */

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
	FLOWCTL_CNT_SUPPRESSED,       /* new-flow packets over their source's budget (no event) */
	FLOWCTL_CNT_SUMMARIES,        /* FLOWCTL_EV_SUPPRESSED records written to the ring */
	FLOWCTL_CNT_FLOOD_DROPPED,    /* SYNs dropped by the SYN-flood mitigation */
	FLOWCTL_CNT_L7_LOST_HTTP_REQ, /* L7 events lost (ring full) whose segment starts a request line */
	FLOWCTL_CNT_L7_LOST_HTTP_RESP, /* ... a status line */
	FLOWCTL_CNT_L7_LOST_DNS,      /* DNS L7 events lost (ring full) */
	FLOWCTL_CNT_MAX,
};

/* FLOWCTL_EV_FLOW. The record on the ring is the header (offsetof(payload) bytes) followed by
 * captured_len payload bytes: only the used length is sent. Addresses in network order, IPv4 in
 * the first 4 bytes; ports in host order. Counters are this packet's direction (packets, bytes)
 * and the opposite one (reply_*) since the connection started; bytes are L4 payload bytes (after
 * the TCP header with its options, the UDP, SCTP or ICMP header; by the IP length, so a GSO packet
 * counts all its payload and Ethernet padding none). */
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
	/* HTTP: a segment may be sent as several windows (events), each its own captured bytes. */
	__u32 captured_off; /* offset in the L4 payload of the first captured byte */
	__u32 l7_start;     /* FLOWCTL_L7_FOLLOWED: the first message start in the captured bytes (payload offset), or ~0 */
	__u32 l7_msg;       /* its index among the direction's messages (interim 1xx responses not counted) */
	__u32 l7_more;      /* payload offset of this segment's next window (the next event), 0: none */
	__u8 l7_flags;      /* FLOWCTL_L7_* below */
	__u8 l7_starts;     /* FLOWCTL_L7_FOLLOWED: message starts in the captured bytes */
	__u8 pad[6];
	__u8 payload[FLOWCTL_MAX_PAYLOAD];
};

#define FLOWCTL_FLOW_EVENT_HDR_LEN 176

/* flow_event.l7_flags. FOLLOWED: the kernel follows the direction's messages (bpf/l7.bpf.h) through
 * this window: a message starts in it at l7_start and nowhere before that, or nowhere. */
#define FLOWCTL_L7_FOLLOWED 1 /* offsetof(struct flow_event, payload) */

/* A summary of events suppressed by the budgets of budget.bpf.h, per source and scope, over a
 * window that starts with the first suppressed event and lasts budget_report_ns. On the `events`
 * ring (type FLOWCTL_EV_SUPPRESSED): TCP SYNs, SYN-ACKs and RSTs, UDP and ICMP packets that would
 * have started a connection entry (each still got its verdict); on trace.bpf.c's ring (trace.h's
 * FCT_EV_KDROP_SUMMARY): kernel drops of such packets. One per source and kind of flow (TCP, UDP,
 * ICMP, DNS). src is the connections' opener (with many_sources, the last of the sources without a
 * budget of their own), dst and dst_port its peer's (ICMP: dst_port is the type), of the last
 * suppressed event. */
struct flowctl_suppressed_event {
	__u8 type;
	__u8 abi_version;  /* FLOWCTL_ABI_VERSION */
	__u8 ip_version;
	__u8 obs_point;    /* TC: of the last suppressed packet */
	__u8 verdict;      /* of the last suppressed event */
	__u8 many_sources; /* 1: the shared budget of sources without one of their own */
	__u8 proto;
	__u8 pad;
	__u16 tcp_flags;   /* union of the suppressed packets' flags */
	__u16 drop_reason; /* of the last dropped one (TC: flow.DropReason; kernel drops: enum fct_drop_reason) */
	__u16 dst_port;
	__u16 pad2;
	__u32 ifindex;
	__u32 scope; /* the budget's: the ifindex (TC) or the network namespace inode (kernel drops) */
	__u64 ts_ns;
	__u64 first_ns; /* first and last suppressed event of the window */
	__u64 last_ns;
	__u64 packets; /* suppressed events in the window */
	__u64 syns;    /* of which SYNs without ACK */
	__u64 dropped; /* of which dropped (TC: by policy or the SYN-flood mitigation; kernel drops: all) */
	__u32 src_ip[4];
	__u32 dst_ip[4];
};

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

/* `isolated` key: a local endpoint's address whose egress is denied but DNS (respond: isolate);
 * the value is the drop-list entry's id, reported in policy_ref with FLOWCTL_DROP_POLICY_DENY. */
struct flowctl_isolate_key {
	__u8 addr[16]; /* network order; IPv4 in the first 4 bytes */
	__u32 family;  /* 4 or 6 */
};

/* `isolate_counts` value, per CPU: what an isolation (by drop-list entry id) dropped at TC. */
struct flowctl_isolate_count {
	__u64 packets;
	__u64 bytes; /* skb->len */
};

/* `policy_enforce`: u32 identity -> u32 of these bits. */
#define FLOWCTL_ENFORCE_INGRESS 1
#define FLOWCTL_ENFORCE_EGRESS 2
#define FLOWCTL_ENFORCE_FQDN 4 /* egress has toFQDNs rules: DNS answers to it teach addresses; */
/* bits 8-31 then hold the rule_ref a default deny of its egress outside the cluster reports */

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

/* toFQDNs (fqdn.bpf.h). Selector i (0..63) is the policy peer identity FLOWCTL_FQDN_IDENTITY + i. */
#define FLOWCTL_FQDN_IDENTITY (1U << 28)

/* How a selector matches the question name of an answer. */
enum flowctl_fqdn_match {
	FLOWCTL_FQDN_NAME = 1,  /* the whole name */
	FLOWCTL_FQDN_LABEL = 2, /* any one label, then the name hashed (`*.suffix`) */
	FLOWCTL_FQDN_ANY = 3,   /* every name (`*`); hash 0 */
};

/* `fqdn_globs` value: a matchPattern the hashes cannot match (`sub*.example.com`, `*.*.example.com`),
 * lower case, dotted, `*` matching name characters within one label; entries packed from index 0,
 * len 0 ends them. */
struct flowctl_fqdn_glob {
	__u64 bits; /* the selector's bit */
	__u32 len;
	__u32 pad;
	__u8 pat[256];
};

/* `fqdn_names` key -> __u64 bits of the selectors that match. hash: FNV-1a 64 of the lower-cased
 * wire-format name (length-prefixed labels, no root byte). */
struct flowctl_fqdn_name_key {
	__u64 hash;
	__u32 kind; /* enum flowctl_fqdn_match */
	__u32 pad;
};

/* `fqdn_ips`: an address `endpoint` learned from a DNS answer. Addresses in network order, IPv4
 * in the first 4 bytes. */
struct flowctl_fqdn_ip_key {
	__u32 family; /* 4 or 6 */
	__u32 endpoint[4];
	__u32 addr[4];
};

/* `fqdn_peers`: a dual-stack local endpoint's address -> its address of the other family (written
 * by user space), so that AAAA records in an answer over IPv4 (A records over IPv6) are learned for
 * the address its connections of that family come from. */
struct flowctl_fqdn_peer_key {
	__u32 family; /* 4 or 6 */
	__u32 addr[4];
};

struct flowctl_fqdn_peer {
	__u32 addr[4];
};

struct flowctl_fqdn_ip_value {
	__u64 expires_ns; /* bpf_ktime_get_ns() after which it allows nothing */
	__u64 selectors;  /* bits: the selectors it was learned through */
	__u64 name_hash;  /* of the last question name that taught it (per-name limits) */
};

#endif /* __FLOWCTL_H */
