// SPDX-License-Identifier: MIT
// The tcpdump-like filter of the packets probe: parse, compile to the kernel's jump
// program, evaluate in JavaScript.
export { parseFilter, FilterError, FLAG_BITS } from './parse';
export type { FilterNode, Direction } from './parse';
export { compileFilter, compileNode, specToNode, evaluateFilter, FilterOp, FILTER_MAX_INSNS, FILTER_ACCEPT, FILTER_REJECT } from './compile';
export type { CompiledFilter, FilterInsn, PacketFilter, PacketFilterSpec, PortSpec, TcpFlagName } from './compile';
