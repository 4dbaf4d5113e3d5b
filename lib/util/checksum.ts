// SPDX-License-Identifier: MIT
// The Internet checksum (RFC 1071), shared by the frame builders and the -v printer.

/**
 * The ones' complement of the ones' complement sum of the chunks' 16-bit big-endian words,
 * as if concatenated (every chunk but the last must have an even length; an odd last byte
 * is padded with zero). Over data that includes a correct checksum field it is 0.
 */
export function internetChecksum(chunks: readonly Uint8Array[]): number {
  let sum = 0;
  for (const chunk of chunks) {
    const n = chunk.length;
    for (let i = 0; i + 1 < n; i += 2) sum += (chunk[i]! << 8) | chunk[i + 1]!;
    if (n & 1) sum += chunk[n - 1]! << 8;
    // Fold now and then: a 64 KiB segment of 0xffff words stays far below 2^53 anyway,
    // but keeping the sum small keeps it a small integer (SMI) for V8.
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * The value a checksum field should hold, from the value it holds and the checksum computed
 * over the data with that field in place (non-zero when it is wrong), as tcpdump reports it
 * in "incorrect -> 0x...": the field plus the computed sum, in ones' complement arithmetic.
 */
export function checksumShouldBe(field: number, computed: number): number {
  let s = field + computed;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s;
}
