/**
 * tcpscope: inspect incoming TCP traffic with eBPF.
 *
 * The built-in probes are exported here; the generic runtime is `tcpscope/bpf`.
 */
export * from './probes';
export { formatAddress, parseCidr, cidrContains, parsePort, AF_INET, AF_INET6 } from './net/addr';
export type { Cidr } from './net/addr';
export { dropReasonName, resetReasonName, tcpStateName, kernelEnum, kernelEnumValue } from './kernel/names';
export { ProbeStream } from './probes/stream';
export type { ProbeOptions } from './probes/stream';
