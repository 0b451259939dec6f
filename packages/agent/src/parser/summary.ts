// Hubble's Summary strings (cilium pkg/hubble/parser/threefour/parser.go): the flag order and the
// ICMP names come from there and from gopacket's ICMPv4TypeCode/ICMPv6TypeCode String().
import type { TCPFlags } from '@flowctl/flow';

const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10, URG = 0x20, ECE = 0x40, CWR = 0x80, NS = 0x100;

// Flows share one frozen TCPFlags object per flag combination: a full ring holds 65k flows.
const flagsCache: (TCPFlags | undefined)[] = new Array(512);

export function tcpFlagsFromBits(bits: number): TCPFlags {
  const key = bits & 0x1ff;
  return (flagsCache[key] ??= Object.freeze(buildFlags(key)));
}

function buildFlags(bits: number): TCPFlags {
  const f: TCPFlags = {};
  if (bits & FIN) f.FIN = true;
  if (bits & SYN) f.SYN = true;
  if (bits & RST) f.RST = true;
  if (bits & PSH) f.PSH = true;
  if (bits & ACK) f.ACK = true;
  if (bits & URG) f.URG = true;
  if (bits & ECE) f.ECE = true;
  if (bits & CWR) f.CWR = true;
  if (bits & NS) f.NS = true;
  return f;
}

// Hubble prints SYN, ACK, RST, FIN, PSH, URG, ECE, CWR, NS in this order (not header bit order).
const ORDER: [number, string][] = [
  [SYN, 'SYN'], [ACK, 'ACK'], [RST, 'RST'], [FIN, 'FIN'], [PSH, 'PSH'], [URG, 'URG'], [ECE, 'ECE'], [CWR, 'CWR'], [NS, 'NS'],
];
const tcpSummaryCache = new Map<number, string>();

export function tcpSummary(bits: number): string {
  const key = bits & 0x1ff;
  let s = tcpSummaryCache.get(key);
  if (s === undefined) {
    s = 'TCP Flags: ' + ORDER.filter(([b]) => key & b).map(([, n]) => n).join(', ');
    tcpSummaryCache.set(key, s);
  }
  return s;
}

type CodeNames = Record<number, string>;
const ICMPV4: Record<number, [string, CodeNames?]> = {
  0: ['EchoReply'],
  3: ['DestinationUnreachable', {
    0: 'Net', 1: 'Host', 2: 'Protocol', 3: 'Port', 4: 'FragmentationNeeded', 5: 'SourceRoutingFailed',
    6: 'NetUnknown', 7: 'HostUnknown', 8: 'SourceIsolated', 9: 'NetAdminProhibited', 10: 'HostAdminProhibited',
    11: 'NetTOS', 12: 'HostTOS', 13: 'CommAdminProhibited', 14: 'HostPrecedence', 15: 'PrecedenceCutoff',
  }],
  4: ['SourceQuench'],
  5: ['Redirect', { 0: 'Net', 1: 'Host', 2: 'TOS+Net', 3: 'TOS+Host' }],
  8: ['EchoRequest'],
  9: ['RouterAdvertisement'],
  10: ['RouterSolicitation'],
  11: ['TimeExceeded', { 0: 'TTLExceeded', 1: 'FragmentReassemblyTimeExceeded' }],
  12: ['ParameterProblem', { 0: 'PointerIndicatesError', 1: 'MissingOption', 2: 'BadLength' }],
  13: ['TimestampRequest'],
  14: ['TimestampReply'],
  15: ['InfoRequest'],
  16: ['InfoReply'],
  17: ['AddressMaskRequest'],
  18: ['AddressMaskReply'],
};
const ICMPV6: Record<number, [string, CodeNames?]> = {
  1: ['DestinationUnreachable', {
    0: 'NoRouteToDst', 1: 'AdminProhibited', 2: 'BeyondScopeOfSrc', 3: 'AddressUnreachable', 4: 'PortUnreachable',
    5: 'SrcAddressFailedPolicy', 6: 'RejectRouteToDst',
  }],
  2: ['PacketTooBig'],
  3: ['TimeExceeded', { 0: 'HopLimitExceeded', 1: 'FragmentReassemblyTimeExceeded' }],
  4: ['ParameterProblem', { 0: 'ErroneousHeaderField', 1: 'UnrecognizedNextHeader', 2: 'UnrecognizedIPv6Option' }],
  128: ['EchoRequest'],
  129: ['EchoReply'],
  130: ['MulticastListenerQuery'],
  131: ['MulticastListenerReport'],
  132: ['MulticastListenerDone'],
  133: ['RouterSolicitation'],
  134: ['RouterAdvertisement'],
  135: ['NeighborSolicitation'],
  136: ['NeighborAdvertisement'],
  137: ['Redirect'],
  138: ['RouterRenumbering'],
  139: ['NodeInformationQuery'],
  140: ['NodeInformationResponse'],
  141: ['InverseNeighborDiscoverySolicitation'],
  142: ['InverseNeighborDiscoveryAdvertisement'],
  143: ['MLDv2MulticastListenerReport'],
  144: ['HomeAgentAddressDiscoveryRequest'],
  145: ['HomeAgentAddressDiscoveryReply'],
  146: ['MobilePrefixSolicitation'],
  147: ['MobilePrefixAdvertisement'],
  148: ['CertificationPathSolicitation'],
  149: ['CertificationPathAdvertisement'],
};

/** gopacket's TypeCode.String(): "EchoRequest", "DestinationUnreachable(Port)", "3(7)". */
function typeCodeString(table: Record<number, [string, CodeNames?]>, type: number, code: number): string {
  const info = table[type];
  if (!info) return `${type}(${code})`;
  const [typeStr, codes] = info;
  if (!codes) return code === 0 ? typeStr : `${typeStr}(Code: ${code})`;
  const codeStr = codes[code];
  return codeStr === undefined ? `${typeStr}(Code: ${code})` : `${typeStr}(${codeStr})`;
}

/** The ICMP type's name alone ("EchoRequest"), as Hubble's icmp metric labels it; undefined when unnamed. */
export function icmpTypeName(v6: boolean, type: number): string | undefined {
  return (v6 ? ICMPV6 : ICMPV4)[type]?.[0];
}

export function icmpv4Summary(type: number, code: number): string {
  return 'ICMPv4 ' + typeCodeString(ICMPV4, type, code);
}

export function icmpv6Summary(type: number, code: number): string {
  return 'ICMPv6 ' + typeCodeString(ICMPV6, type, code);
}
