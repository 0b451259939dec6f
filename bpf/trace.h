/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel/user ABI of the tracepoint programs (trace.bpf.c): TCP lifecycle and kernel drops.
 * Decoded by packages/agent/src/datapath/abi-trace.ts; abi-trace.test.ts compares its offsets
 * with offsetof() from this header, compiled for the host. */
#ifndef __FLOWCTL_TRACE_H
#define __FLOWCTL_TRACE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define FCT_ABI_VERSION 1

/* Byte 0 of every record of the trace_events ring. Distinct from the flow program's event types
 * (flowctl.h) so that a record that ends up on the wrong decoder is recognised as foreign. */
enum fct_event_type {
	FCT_EV_SOCK_STATE = 0x10, /* sock/inet_sock_set_state */
	FCT_EV_RETRANSMIT = 0x11, /* tcp/tcp_retransmit_skb */
	FCT_EV_KDROP = 0x12,      /* skb/kfree_skb */
	FCT_EV_KDROP_SUMMARY = 0x13, /* struct flowctl_suppressed_event (flowctl.h): kernel drops over budget */
};

/* Per-CPU counters (trace_counters); every place an event is lost has one. */
enum fct_counter {
	FCT_CNT_RINGBUF_FULL = 0, /* bpf_ringbuf_reserve failed */
	FCT_CNT_SOCK_MAP_FULL,    /* connection start time could not be stored: duration unknown */
	FCT_CNT_KDROP_UNPARSED,   /* a watched drop whose IP header could not be read (not emitted) */
	FCT_CNT_KDROP_SUPPRESSED, /* drops of TCP attempts, UDP, ICMP over their source's budget (in a summary) */
	FCT_CNT_KDROP_SUMMARIES,  /* FCT_EV_KDROP_SUMMARY records written */
	FCT_CNT_MAX,
};

/* Kernel drop reasons translated to a numbering that does not depend on the kernel version:
 * enum skb_drop_reason is renumbered whenever a reason is added, so the program matches them by
 * name through CO-RE (bpf_core_enum_value) and emits these. 0: not one of these (see
 * kernel_reason for the kernel's own value). User space maps them to Hubble's DropReason. */
enum fct_drop_reason {
	FCT_DROP_OTHER = 0,
	FCT_DROP_NO_SOCKET,
	FCT_DROP_PKT_TOO_SMALL,
	FCT_DROP_TCP_CSUM,
	FCT_DROP_UDP_CSUM,
	FCT_DROP_NETFILTER_DROP,
	FCT_DROP_OTHERHOST,
	FCT_DROP_IP_CSUM,
	FCT_DROP_IP_INHDR,
	FCT_DROP_IP_RPFILTER,
	FCT_DROP_IP_NOPROTO,
	FCT_DROP_SOCKET_FILTER,
	FCT_DROP_SOCKET_RCVBUFF,
	FCT_DROP_PROTO_MEM,
	FCT_DROP_IP_OUTNOROUTES,
	FCT_DROP_IP_INNOROUTES,
	FCT_DROP_IP_INADDRERRORS,
	FCT_DROP_IP_INVALID_SOURCE,
	FCT_DROP_IP_LOCAL_SOURCE,
	FCT_DROP_IP_INVALID_DEST,
	FCT_DROP_NEIGH_FAILED,
	FCT_DROP_QDISC_DROP,
	FCT_DROP_TC_INGRESS,
	FCT_DROP_TC_EGRESS,
	FCT_DROP_HDR_TRUNC,
	FCT_DROP_UNHANDLED_PROTO,
	FCT_DROP_ICMP_CSUM,
	FCT_DROP_TCP_INVALID_SYN,
	FCT_DROP_TCP_RESET,
	FCT_DROP_TCP_FLAGS,
	FCT_DROP_TCP_OLD_DATA,
	FCT_DROP_SOCKET_CLOSE,
	FCT_DROP_PKT_TOO_BIG,
	FCT_DROP_MAX,
};

enum fct_opener {
	FCT_OPENER_UNKNOWN = 0,
	FCT_OPENER_PEER = 1, /* passive open (SYN_RECV): the socket accepted the connection */
	FCT_OPENER_SELF = 2, /* active open (SYN_SENT): the socket connected */
};

/* FCT_EV_SOCK_STATE and FCT_EV_RETRANSMIT. Ports in host order; addresses in network order,
 * IPv4 in the first 4 bytes. */
struct fct_sock_event {
	__u8 type;
	__u8 abi_version;
	__u8 ip_version; /* 4 or 6 */
	__u8 old_state;  /* TCP_* (for a retransmit: the current state) */
	__u8 new_state;
	__u8 opener;  /* enum fct_opener: which end opened the connection, 0 when not seen */
	__u8 sk_err;  /* sk->sk_err at the transition (ECONNREFUSED, ETIMEDOUT...), 0 if none */
	__u8 pad;
	__u64 ts_ns;          /* bpf_ktime_get_ns() */
	__u64 duration_ns;    /* since the first transition seen, 0 when unknown */
	__u64 bytes_acked;    /* tcp_sock.bytes_acked (RFC 4898 tcpEStatsAppHCThruOctetsAcked) */
	__u64 bytes_received; /* tcp_sock.bytes_received */
	__u32 netns_ino;
	__u32 srtt_us; /* tcp_sock.srtt_us >> 3 */
	__u32 total_retrans;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* FCT_EV_KDROP */
struct fct_kdrop_event {
	__u8 type;
	__u8 abi_version;
	__u8 ip_version;
	__u8 proto; /* IPPROTO_* */
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 pad;
	__u64 ts_ns;
	__u32 netns_ino;
	__u32 ifindex;       /* skb->dev, 0 when the skb had none */
	__u32 kernel_reason; /* this kernel's enum skb_drop_reason value */
	__u16 reason;        /* enum fct_drop_reason */
	__u16 sport;
	__u16 dport;
	__u16 pad2;
	__u32 pad3;
	__u8 saddr[16];
	__u8 daddr[16];
};

#endif /* __FLOWCTL_TRACE_H */
