// The decoded kernel events, as the datapath decoder (abi.ts) hands them to the parser.
// This is the contract between bpf/ (via abi.ts) and parser/: change both sides together.

export type IpVersion = 4 | 6;

/** Where on the endpoint's host-side veth the packet was seen. */
export const enum ObsPoint {
  /** TC ingress of the host-side veth: the packet leaves the pod (pod egress). */
  FromEndpoint = 1,
  /** TC egress of the host-side veth: the packet enters the pod (pod ingress). */
  ToEndpoint = 2,
}

/** Why the kernel emitted a flow event (aggregation happens in the kernel). */
export const enum FlowReason {
  New = 1, // first packet of a connection in this direction
  Flags = 2, // a TCP flag (SYN/FIN/RST) not seen before in this direction
  Close = 3, // FIN/RST completed or LRU eviction
  Stats = 4, // periodic update for a long connection
  Sample = 5, // every-packet mode
  Policy = 6, // verdict event (drop or audit) from the policy check
  L7 = 7, // only the payload (DNS or HTTP) is news: no L3/L4 flow of its own
}

export const enum L7Proto {
  None = 0,
  Dns = 1,
  Http = 2,
}

export interface FlowEvent {
  kind: 'flow';
  /** bpf_ktime_get_ns() (CLOCK_MONOTONIC, the clock of process.hrtime.bigint()); the agent maps it to wall-clock time. */
  tsNs: bigint;
  ifindex: number;
  obsPoint: ObsPoint;
  reason: FlowReason;
  /** flow.Verdict numbers: 1 FORWARDED, 2 DROPPED, 4 AUDIT. */
  verdict: number;
  /** flow.DropReason number (133 POLICY_DENIED) or 0. */
  dropReason: number;
  ipVersion: IpVersion;
  srcIp: string;
  dstIp: string;
  /** IPPROTO_* (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP). */
  proto: number;
  srcPort: number;
  dstPort: number;
  /** TCP flags of this packet, TCP header bit order: FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20 ECE 0x40 CWR 0x80; NS is bit 8. */
  tcpFlags: number;
  /** Union of flags seen in this direction of the connection so far. */
  tcpFlagsSeen: number;
  icmpType: number;
  icmpCode: number;
  /** undefined when the kernel could not tell (e.g. the connection started before the agent). */
  isReply: boolean | undefined;
  srcIdentity: number;
  dstIdentity: number;
  /** Index of the policy rule that decided (user space maps it to names), 0 when none. */
  policyRef: number;
  /** 1 ingress, 2 egress (flow.TrafficDirection) of the decision, from the endpoint's view. */
  policyDirection: number;
  ethSrc: string;
  ethDst: string;
  /** Counters of this connection (this direction = forward from the event's point of view). */
  packets: bigint;
  bytes: bigint;
  replyPackets: bigint;
  replyBytes: bigint;
  firstSeenNs: bigint;
  lastSeenNs: bigint;
  l7: L7Proto;
  /** Up to max_payload bytes of L4 payload (a copy), empty when l7 = None. */
  payload: Buffer;
  /** Length of the L4 payload in the packet (may exceed payload.length). */
  payloadLen: number;
  /** This packet's TCP sequence and acknowledgement numbers; 0 for non-TCP. */
  tcpSeq: number;
  tcpAck: number;
  /** HTTP: a segment may come as several events (windows), each with its own bytes (bpf/l7.bpf.h).
   * Payload offset of payload[0]; 0 when absent. */
  capturedOff?: number;
  /** The kernel follows the direction's messages through this window: l7Start is the first
   * message start in it (a payload offset; none when undefined), l7Msg its index in the
   * direction, l7Starts how many start in it. */
  l7Followed?: boolean;
  l7Start?: number;
  l7Msg?: number;
  l7Starts?: number;
  /** Payload offset of the segment's next window (the next event of the direction), 0: none. */
  l7More?: number;
}

/** TCP lifecycle, from tracepoints sock/inet_sock_set_state and tcp/tcp_retransmit_skb. */
export interface SockEvent {
  kind: 'sock';
  tsNs: bigint;
  /** 'state' for a state transition, 'retransmit' for tcp_retransmit_skb. */
  what: 'state' | 'retransmit';
  /** Network namespace inode of the socket (attribution to an endpoint's netns). */
  netnsIno: number;
  ipVersion: IpVersion;
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  /** TCP_* states (1 ESTABLISHED ... 7 CLOSE, 10 LISTEN, 2 SYN_SENT, 3 SYN_RECV). */
  oldState: number;
  newState: number;
  /** Which end opened the connection (enum fct_opener): 1 the peer (accepted), 2 this socket, 0 unknown. Absent in old recordings. */
  opener?: 0 | 1 | 2;
  /** sk_err at the transition: 111 ECONNREFUSED, 110 ETIMEDOUT, 104 ECONNRESET..., 0 none. */
  skErr?: number;
  /** Connection age at this event, 0 when unknown. */
  durationNs: bigint;
  bytesAcked: bigint;
  bytesReceived: bigint;
  /** Smoothed RTT in microseconds. */
  srttUs: number;
  /** Total retransmitted segments of the socket. */
  retransmits: number;
}

/** A packet the kernel freed with a drop reason (tracepoint skb/kfree_skb). */
export interface KernelDropEvent {
  kind: 'kdrop';
  tsNs: bigint;
  netnsIno: number;
  ifindex: number;
  /** The kernel's enum skb_drop_reason value. */
  kernelReason: number;
  /** Mapped flow.DropReason number, 0 when Hubble has no equivalent. */
  dropReason: number;
  ipVersion: IpVersion;
  srcIp: string;
  dstIp: string;
  proto: number;
  srcPort: number;
  dstPort: number;
  tcpFlags: number;
  icmpType: number;
  icmpCode: number;
}

/**
 * Packets the XDP drop list dropped (bpf/xdp.bpf.c): a sample packet of one source and entry,
 * and how many that source lost to the entry since the previous event of the pair.
 */
export interface XdpDropEvent {
  kind: 'xdrop';
  tsNs: bigint;
  ifindex: number;
  /** The drop-list entry (BlockList id). */
  entryId: number;
  /** Which address of the packet is in the entry. */
  matched: 'source' | 'destination';
  packets: bigint;
  bytes: bigint;
  ipVersion: IpVersion;
  srcIp: string;
  dstIp: string;
  /** 0 for a non-first fragment. */
  proto: number;
  srcPort: number;
  dstPort: number;
  tcpFlags: number;
  icmpType: number;
  icmpCode: number;
}

/**
 * Events the kernel suppressed because their source was over its budget (bpf/budget.bpf.h), summed
 * per source and kind of flow over a window of about a second: packets that would start a flow (TCP
 * SYN, SYN-ACK, RST; any UDP or ICMP packet) at TC ('tc'), kernel drops of such packets ('kdrop'), or
 * SYNs --syn-flood-protect dropped at XDP on a node interface ('xdp').
 */
export interface SuppressedEvent {
  kind: 'suppressed';
  origin: 'tc' | 'kdrop' | 'xdp';
  tsNs: bigint;
  ifindex: number;
  /** The budget's scope: the ifindex ('tc', 'xdp') or the network namespace inode ('kdrop'). */
  scope: number;
  proto: number;
  /** Of the last suppressed packet. */
  obsPoint: ObsPoint;
  verdict: number;
  /** flow.DropReason of the last dropped packet (198 DROP_RATE_LIMITED by --syn-flood-protect), 0 none dropped. */
  dropReason: number;
  /** 'kdrop': the kernel's name of the drop reason (SKB_DROP_REASON_<name>), when known. */
  kernelReason?: string;
  /** The shared budget of sources without one of their own: srcIp is the last of them. */
  manySources: boolean;
  ipVersion: IpVersion;
  /** The connections' opener, and its peer (address and port; ICMP: the type) of the last suppressed packet. */
  srcIp: string;
  dstIp: string;
  dstPort: number;
  /** Union of the suppressed packets' TCP flags. */
  tcpFlags: number;
  firstNs: bigint;
  lastNs: bigint;
  packets: bigint;
  /** Of which SYNs without ACK. */
  syns: bigint;
  /** Of which dropped (policy, or the SYN-flood mitigation). */
  dropped: bigint;
}

export type DatapathEvent = FlowEvent | SockEvent | KernelDropEvent | XdpDropEvent | SuppressedEvent;

/** Per-CPU counters summed over CPUs; the names match the C enum in bpf/flowctl.h. */
export interface DatapathCounters {
  ringbufFull: bigint; // events lost: bpf_ringbuf_reserve failed
  flowMapFull: bigint; // connection state could not be stored
  malformed: bigint; // truncated or garbage packets passed through untouched
  [name: string]: bigint;
}
