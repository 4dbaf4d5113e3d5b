// SPDX-License-Identifier: MIT
// The alert every detector emits: lib/alerts' Alert, with a key that matches a cleared
// alert to its raise.
import type { Alert, KnownAlertKind } from '../alerts/types';

/**
 * What a detector reports: the shared Alert of lib/alerts (so every sink takes it), with
 * `key` always set: it identifies one condition, equal in its raised and cleared alerts
 * (e.g. 'syn_flood/source/10.0.0.2').
 */
export type DetectAlert = Alert & { kind: AlertKind; key: string };

export type AlertKind = KnownAlertKind;

/** Receives alerts as detectors make them. */
export type AlertEmitter = (alert: DetectAlert) => void;

/** Compresses sorted ports into '1-5,22,80' form. */
export function portRanges(ports: Iterable<number>): string {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Rounds a rate for evidence (2 decimals). */
export function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Top `n` entries of a count map, highest first. */
export function top<K>(counts: Iterable<[K, number]>, n: number): Array<[K, number]> {
  return [...counts].filter(([, c]) => c > 0).sort((a, b) => b[1] - a[1]).slice(0, n);
}
