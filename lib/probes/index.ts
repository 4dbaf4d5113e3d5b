// SPDX-License-Identifier: MIT
// Built-in probes. One line per probe module.
export {};
export * from './connections';
export * from './retransmits';
export * from './rtt';
export * from './resets';
export * from './drops';
export type { TcpFilterOptions, TcpProbe, Unavailable } from './tcp_common';
export { tracepointAvailable } from './tcp_common';
export * from './packets';
export * from './syn-counts';
