// SPDX-License-Identifier: MIT
// Which webhook targets are refused by default: link-local addresses and the cloud metadata
// services that live there, the usual prey of a forged or mistyped alert URL (a metadata
// service answers a POST with credentials on some clouds). Checked on the URL's host and on
// every address its name resolves to, at each connection.
import dns from 'node:dns';
import net from 'node:net';

const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata']);
const METADATA_ADDRESSES = new Set(['169.254.169.254', 'fd00:ec2::254', '169.254.170.2']);

const linkLocal = new net.BlockList();
linkLocal.addSubnet('169.254.0.0', 16, 'ipv4');
linkLocal.addSubnet('fe80::', 10, 'ipv6');

/** Why `address` (an IP address) is refused as a webhook target, or undefined. */
export function refusedAddress(address: string): string | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const ip = mapped ? mapped[1]! : address.replace(/%.*$/, '');
  const family = net.isIP(ip);
  if (!family) return undefined;
  if (METADATA_ADDRESSES.has(ip.toLowerCase())) return `${address} is a cloud metadata service address`;
  if (linkLocal.check(ip, family === 4 ? 'ipv4' : 'ipv6')) return `${address} is a link-local address`;
  return undefined;
}

/** Why the host of a URL (name or address literal) is refused, or undefined. */
export function refusedHost(hostname: string): string | undefined {
  const host = hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (METADATA_NAMES.has(host)) return `${host} is a cloud metadata service`;
  return refusedAddress(host);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** A net.connect `lookup` that fails when a name resolves to a refused address. */
export function guardedLookup(what: string): (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => void {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      for (const a of addresses) {
        const why = refusedAddress(a.address);
        if (why) {
          const e: NodeJS.ErrnoException = new Error(`${what}: ${hostname} resolves to ${why}; refused (allowLinkLocal: true permits it)`);
          e.code = 'EREFUSEDTARGET';
          return callback(e, '');
        }
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${hostname}: no address`), { code: 'ENOTFOUND' }), '');
      callback(null, first.address, first.family);
    });
  };
}
