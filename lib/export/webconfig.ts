// SPDX-License-Identifier: MIT
// The web configuration file of Prometheus exporters (the exporter-toolkit format that
// node_exporter reads with --web.config.file): TLS for /metrics and HTTP basic auth with
// bcrypt-hashed passwords. Read and checked once, before anything listens.
//
//   tls_server_config:
//     cert_file: server.crt          # relative paths are relative to this file
//     key_file: server.key
//     client_ca_file: ca.crt         # optional: require client certificates
//     client_auth_type: RequireAndVerifyClientCert
//     min_version: TLS12
//   basic_auth_users:
//     prometheus: $2y$10$...         # htpasswd -nBC 10 "" | tr -d ':\n'
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import type { SecureVersion } from 'node:tls';
import { ConfigError } from './config';
import { requireOptional, requirePackages } from '../util/optional';
import { BcryptVerifier } from './bcrypt-worker';

export interface WebTlsConfig {
  cert: Buffer;
  key: Buffer;
  /** Client certificates are checked against these CAs. */
  ca?: Buffer;
  /** Whether a client certificate is asked for and whether one is required. */
  requestCert: boolean;
  rejectUnauthorized: boolean;
  minVersion: SecureVersion;
  maxVersion?: SecureVersion;
}

export interface WebConfig {
  tls: WebTlsConfig | undefined;
  /** user → bcrypt hash */
  users: ReadonlyMap<string, string>;
}

const TLS_VERSIONS: Readonly<Record<string, SecureVersion>> = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' };
/** exporter-toolkit's client_auth_type values (Go's tls.ClientAuthType names). */
const CLIENT_AUTH: Readonly<Record<string, { requestCert: boolean; rejectUnauthorized: boolean; needsCa: boolean }>> = {
  NoClientCert: { requestCert: false, rejectUnauthorized: false, needsCa: false },
  RequestClientCert: { requestCert: true, rejectUnauthorized: false, needsCa: false },
  VerifyClientCertIfGiven: { requestCert: true, rejectUnauthorized: false, needsCa: true },
  RequireAnyClientCert: { requestCert: true, rejectUnauthorized: false, needsCa: false },
  RequireAndVerifyClientCert: { requestCert: true, rejectUnauthorized: true, needsCa: true },
};
const BCRYPT = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

type Obj = Record<string, unknown>;

function object(v: unknown, at: string, known: readonly string[]): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${at}: expected a mapping`);
  for (const key of Object.keys(v)) {
    if (!known.includes(key)) throw new ConfigError(`${at}: '${key}' is not supported here (supported: ${known.join(', ')})`);
  }
  return v as Obj;
}

function text(v: unknown, at: string): string {
  if (typeof v !== 'string' || v === '') throw new ConfigError(`${at}: expected a non-empty string`);
  return v;
}

function readPem(file: string, base: string, at: string): Buffer {
  const full = path.resolve(base, file);
  try {
    return fs.readFileSync(full);
  } catch (e) {
    throw new ConfigError(`${at}: cannot read ${full}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Checks a parsed web config; `file` names it in messages and anchors relative paths. */
export function validateWebConfig(raw: unknown, file: string): WebConfig {
  const at = file;
  const root = raw === null || raw === undefined ? {} : object(raw, at, ['tls_server_config', 'basic_auth_users']);
  const base = path.dirname(path.resolve(file));
  let tls: WebTlsConfig | undefined;
  if (root['tls_server_config'] !== undefined && root['tls_server_config'] !== null) {
    const t = `${at}: tls_server_config`;
    const o = object(root['tls_server_config'], t, ['cert_file', 'key_file', 'client_ca_file', 'client_auth_type', 'min_version', 'max_version']);
    if (o['cert_file'] === undefined || o['key_file'] === undefined) throw new ConfigError(`${t}: cert_file and key_file are both required`);
    const auth = o['client_auth_type'] === undefined ? (o['client_ca_file'] === undefined ? 'NoClientCert' : 'RequireAndVerifyClientCert') : text(o['client_auth_type'], `${t}.client_auth_type`);
    const mode = Object.hasOwn(CLIENT_AUTH, auth) ? CLIENT_AUTH[auth]! : undefined;
    if (!mode) throw new ConfigError(`${t}.client_auth_type: unknown '${auth}' (known: ${Object.keys(CLIENT_AUTH).join(', ')})`);
    if (mode.needsCa && o['client_ca_file'] === undefined) throw new ConfigError(`${t}: client_auth_type ${auth} needs client_ca_file`);
    const version = (key: string, fallback: SecureVersion | undefined): SecureVersion | undefined => {
      if (o[key] === undefined) return fallback;
      const name = text(o[key], `${t}.${key}`);
      if (!Object.hasOwn(TLS_VERSIONS, name)) throw new ConfigError(`${t}.${key}: unknown '${name}' (known: ${Object.keys(TLS_VERSIONS).join(', ')})`);
      return TLS_VERSIONS[name];
    };
    const cert = readPem(text(o['cert_file'], `${t}.cert_file`), base, `${t}.cert_file`);
    const key = readPem(text(o['key_file'], `${t}.key_file`), base, `${t}.key_file`);
    try {
      // Fails here, with the file named, rather than at the first handshake.
      crypto.createPrivateKey(key);
      new crypto.X509Certificate(cert);
    } catch (e) {
      throw new ConfigError(`${t}: cert_file or key_file is not a PEM certificate/key: ${(e as Error).message}`);
    }
    tls = { cert, key, requestCert: mode.requestCert, rejectUnauthorized: mode.rejectUnauthorized, minVersion: version('min_version', 'TLSv1.2')! };
    const max = version('max_version', undefined);
    if (max) tls.maxVersion = max;
    if (o['client_ca_file'] !== undefined) tls.ca = readPem(text(o['client_ca_file'], `${t}.client_ca_file`), base, `${t}.client_ca_file`);
  }
  const users = new Map<string, string>();
  if (root['basic_auth_users'] !== undefined && root['basic_auth_users'] !== null) {
    const u = root['basic_auth_users'];
    if (typeof u !== 'object' || Array.isArray(u)) throw new ConfigError(`${at}: basic_auth_users: expected a mapping of user: bcrypt hash`);
    for (const [user, hash] of Object.entries(u as Obj)) {
      if (user.includes(':')) throw new ConfigError(`${at}: basic_auth_users: user name '${user}' contains ':'`);
      if (typeof hash !== 'string' || !BCRYPT.test(hash)) {
        throw new ConfigError(`${at}: basic_auth_users.${user}: expected a bcrypt hash ($2y$...), e.g. from \`htpasswd -nBC 10 "" | tr -d ':\\n'\``);
      }
      users.set(user, hash);
    }
  }
  return { tls, users };
}

/** Reads and checks an exporter-toolkit web config file (YAML). */
export function loadWebConfig(file: string): WebConfig {
  let source: string;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read web config file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  // Loaded on first use: only an agent with a web config needs a YAML parser.
  const YAML = requireOptional<typeof import('yaml')>('A web config file', 'yaml');
  let raw: unknown;
  try {
    raw = YAML.parse(source, { maxAliasCount: 100 });
  } catch (e) {
    throw new ConfigError(`web config file ${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const config = validateWebConfig(raw, file);
  // Checked now, before anything listens, rather than at the first scrape.
  if (config.users.size > 0) requirePackages('Basic auth (basic_auth_users)', ['bcryptjs']);
  return config;
}

/**
 * Checks HTTP basic auth against bcrypt hashes. bcrypt is slow on purpose, so a verified
 * user/password pair is remembered (as a keyed digest, never the password) and a scraper
 * pays the cost once, not every scrape; an unknown user costs as much as a known one. At
 * most MAX_VERIFYING checks run at once: a flood of wrong passwords is answered 'busy'
 * instead of queueing unbounded CPU work. The checks run on a worker thread (BcryptVerifier),
 * so they never hold up the event loop the probes' readers and detectors run on.
 */
export class BasicAuth {
  private readonly verified = new Map<string, string>();
  private readonly cacheKey = crypto.randomBytes(32);
  private static readonly MAX_CACHED = 256;
  static readonly MAX_VERIFYING = 4;
  private verifying = 0;
  /** A hash nobody's password matches, compared against for unknown users. */
  private readonly dummy: string;
  private verifier: BcryptVerifier | undefined;

  constructor(private readonly users: ReadonlyMap<string, string>) {
    const first = users.values().next();
    this.dummy = first.done ? '' : first.value.replace(/.{31}$/, '.'.repeat(31));
  }

  get enabled(): boolean {
    return this.users.size > 0;
  }

  /** Whether `req` carries valid credentials (always 'ok' when no users are configured). */
  async check(req: IncomingMessage): Promise<'ok' | 'denied' | 'busy'> {
    if (!this.enabled) return 'ok';
    const header = req.headers.authorization;
    const m = header === undefined ? null : /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!m) return 'denied';
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return 'denied';
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = this.users.get(user);
    const digest = crypto.createHmac('sha256', this.cacheKey).update(decoded).digest('base64');
    if (hash !== undefined && this.verified.get(user) === digest) return 'ok';
    if (this.verifying >= BasicAuth.MAX_VERIFYING) return 'busy';
    this.verifying++;
    let ok: boolean;
    try {
      if (!this.verifier) {
        requirePackages('Basic auth (basic_auth_users)', ['bcryptjs']);
        this.verifier = new BcryptVerifier(require.resolve('bcryptjs'));
      }
      ok = await this.verifier.compare(password, hash ?? this.dummy);
    } finally {
      this.verifying--;
    }
    if (!ok || hash === undefined) return 'denied';
    if (this.verified.size >= BasicAuth.MAX_CACHED) this.verified.clear();
    this.verified.set(user, digest);
    return 'ok';
  }

  /** Stops the bcrypt worker, if one was started. */
  close(): Promise<void> {
    return this.verifier?.close() ?? Promise.resolve();
  }
}
