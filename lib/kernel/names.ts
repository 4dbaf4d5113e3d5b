// SPDX-License-Identifier: MIT
// Names of kernel enums read from the running kernel's BTF, so reasons and states never
// come from a table that goes stale. Each lookup parses BTF once and caches the map.
import { Btf } from '../bpf/btf/parse';

const cache = new Map<string, Map<number, string>>();

function enumByName(enumName: string, stripPrefix: string): Map<number, string> {
  const key = `${enumName}/${stripPrefix}`;
  let names = cache.get(key);
  if (names) return names;
  names = new Map();
  try {
    for (const [value, name] of Btf.kernel().enumValues(`enum ${enumName}`)) {
      names.set(Number(value), name.startsWith(stripPrefix) ? name.slice(stripPrefix.length) : name);
    }
  } catch {
    // Older kernels lack the enum (e.g. sk_rst_reason before 6.10): numbers stay numbers.
  }
  cache.set(key, names);
  return names;
}

/** `NO_SOCKET`, `TCP_CSUM`, ... for a kfree_skb reason (enum skb_drop_reason). */
export function dropReasonName(reason: number): string {
  return enumByName('skb_drop_reason', 'SKB_DROP_REASON_').get(reason) ?? `reason_${reason}`;
}

/** The reason of a reset sent (enum sk_rst_reason, kernel 6.10+). */
export function resetReasonName(reason: number): string {
  return enumByName('sk_rst_reason', 'SK_RST_REASON_').get(reason) ?? `reason_${reason}`;
}

/** All names of an enum of the running kernel, value to name, prefix stripped. */
export function kernelEnum(enumName: string, stripPrefix = ''): ReadonlyMap<number, string> {
  return enumByName(enumName, stripPrefix);
}

/** The value of a named enumerator in the running kernel, e.g. SKB_DROP_REASON_NO_SOCKET. */
export function kernelEnumValue(enumName: string, member: string): number | undefined {
  for (const [value, name] of enumByName(enumName, '')) if (name === member) return value;
  return undefined;
}

const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV', 'BOUND_INACTIVE'];

/** TCP state names (include/net/tcp_states.h: a uapi-stable numbering). */
export function tcpStateName(state: number): string {
  return TCP_STATES[state] || `STATE_${state}`;
}
