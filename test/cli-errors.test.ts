// SPDX-License-Identifier: MIT
// Hostile and mistaken input to the command line: every row runs the real CLI (compiled
// dist) as a process and checks the exit code (2: the command line or configuration is
// wrong; 1: it could not be carried out) and that the failure is one line saying what is
// wrong, with no stack trace. pcapng options too long for their 16-bit length are cut, not
// written corrupt.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, bpfAvailable } from './helpers/bpf';
import { PcapngWriter, readPcapng, MAX_OPTION_BYTES } from '../lib/pcapng';

const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tcpscope-clierr-${process.pid}-`));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const file = (name: string, content: string | Uint8Array): string => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
};
const config = (name: string, value: unknown): string => file(name, typeof value === 'string' ? value : JSON.stringify(value));
/** A serve config that starts no probe: the failure under test comes first. */
const quiet = { probes: { packets: false, connections: false, retransmits: false, resets: false, drops: false, rtt: false }, detect: { enabled: false } };

interface Row {
  name: string;
  args: () => string[];
  code: 1 | 2;
  /** What the one line must say. */
  says: RegExp;
  /** Needs BPF (it gets as far as attaching). */
  bpf?: boolean;
  /** Runs in a new, empty network namespace: a name lookup there fails without sending anything. */
  isolated?: boolean;
}

let realObject = '';
beforeAll(() => {
  realObject = path.join(ROOT, 'build', 'bpf', 'conns.bpf.o');
});

const rows: Row[] = [
  // the command itself
  { name: 'no command', args: () => [], code: 2, says: /./ },
  { name: 'unknown command', args: () => ['nosuchcmd'], code: 2, says: /^tcpscope: unknown command 'nosuchcmd' \(run 'tcpscope --help' for the list of commands\)$/ },
  { name: 'unknown option', args: () => ['conns', '--no-such-option'], code: 2, says: /^tcpscope conns: unknown option '--no-such-option' \(run 'tcpscope conns --help' for its options\)$/ },
  // getopt-style: -s takes the next word whatever it looks like, and -1 is then a bad snaplen.
  { name: 'option value that looks like an option', args: () => ['packets', '-i', 'lo', '-s', '-1'], code: 2, says: /^tcpscope packets: bad --snaplen '-1': expected an integer 0\.\.262144 \(run 'tcpscope packets --help' for its options\)$/ },
  // missing paths and directories
  { name: 'gen-types without a file', args: () => ['gen-types'], code: 2, says: /needs a BPF object file/ },
  { name: 'gen-types on a missing file', args: () => ['gen-types', '/nonexistent/x.bpf.o'], code: 2, says: /no such file: \/nonexistent\/x\.bpf\.o/ },
  { name: 'gen-types on a directory', args: () => ['gen-types', '/tmp'], code: 2, says: /\/tmp is a directory: give a BPF object file/ },
  { name: 'gen-types on a text file', args: () => ['gen-types', '/etc/hostname'], code: 1, says: /not a usable BPF object file: not an ELF file/ },
  { name: 'gen-types on an empty file', args: () => ['gen-types', file('empty.o', '')], code: 1, says: /not a usable BPF object file/ },
  { name: 'gen-types on a truncated object', args: () => ['gen-types', file('cut.o', fs.readFileSync(realObject).subarray(0, 200))], code: 1, says: /not a usable BPF object file/ },
  { name: 'gen-types writing into a missing directory', args: () => ['gen-types', realObject, '-o', '/nonexistent/types.ts'], code: 1, says: /cannot open \/nonexistent\/types\.ts: no such file or directory/ },
  { name: 'packets -w into a missing directory', args: () => ['packets', '-i', 'lo', '-w', '/nonexistent/x.pcapng', '--duration', '5s'], code: 1, says: /cannot open \/nonexistent\/x\.pcapng: no such file or directory: check the path/, bpf: true },
  { name: 'packets -w onto a directory', args: () => ['packets', '-i', 'lo', '-w', dir, '--duration', '5s'], code: 1, says: /is a directory|EISDIR/, bpf: true },
  { name: 'serve --config missing', args: () => ['serve', '--config', '/nonexistent/serve.json'], code: 2, says: /cannot read config file \/nonexistent\/serve\.json: ENOENT/ },
  { name: 'serve --config a directory', args: () => ['serve', '--config', dir], code: 2, says: /cannot read config file .*: EISDIR/ },
  // huge and negative numbers
  { name: 'huge snaplen', args: () => ['packets', '-i', 'lo', '-s', '99999999999999999999999'], code: 2, says: /bad --snaplen '99999999999999999999999'/ },
  { name: 'huge port', args: () => ['timeline', '-P', '99999999999999999999'], code: 2, says: /bad port '99999999999999999999'/ },
  { name: 'negative port', args: () => ['conns', '--port=-1'], code: 2, says: /port '-1'/ },
  { name: 'huge prometheus port', args: () => ['serve', '--prometheus', '1e400'], code: 2, says: /exporters\.prometheus\.port: expected an integer 0-65535/ },
  { name: 'prefix length out of range', args: () => ['conns', '--cidr', '10.0.0.0/4294967296'], code: 2, says: /prefix length/ },
  // deep nesting and absurd size
  { name: 'filter nested 5000 deep', args: () => ['packets', '-i', 'lo', `${'('.repeat(5000)}syn${')'.repeat(5000)}`], code: 2, says: /nested more than 100 levels deep: simplify the filter/ },
  { name: 'filter of 20000 nots', args: () => ['packets', '-i', 'lo', `${'not '.repeat(20000)}syn`], code: 2, says: /nested more than 100 levels deep/ },
  { name: 'filter of 5000 primitives', args: () => ['packets', '-i', 'lo', Array(5000).fill('syn').join(' or ')], code: 2, says: /more than 1000 primitives: simplify the filter/ },
  { name: 'config nested 100000 deep', args: () => ['serve', '--config', config('deep.json', `{"exporters":${'['.repeat(100000)}${']'.repeat(100000)}}`)], code: 2, says: /exporters: expected an object, got an array/ },
  // prototype words
  { name: 'filter word constructor', args: () => ['packets', '-i', 'lo', 'constructor'], code: 2, says: /unknown filter primitive 'constructor'/ },
  { name: 'filter word __proto__', args: () => ['packets', '-i', 'lo', '__proto__'], code: 2, says: /unknown filter primitive '__proto__'/ },
  { name: 'filter flag tcp-constructor', args: () => ['packets', '-i', 'lo', 'tcp[tcpflags] & tcp-constructor != 0'], code: 2, says: /unknown TCP flag 'tcp-constructor'/ },
  { name: 'filter port toString', args: () => ['packets', '-i', 'lo', 'port toString'], code: 2, says: /unknown port 'toString'/ },
  { name: 'config key __proto__', args: () => ['serve', '--config', config('proto.json', '{"__proto__": {"enabled": true}}')], code: 2, says: /config\.__proto__: unknown key/ },
  { name: 'config key constructor', args: () => ['serve', '--config', config('ctor.json', { exporters: { constructor: {} } })], code: 2, says: /exporters: unknown key 'constructor'/ },
  { name: 'detector named toString', args: () => ['serve', '--config', config('tostr.json', { detect: { detectors: { toString: true } } })], code: 2, says: /config\.detect\.detectors\.toString: unknown key/ },
  // bad config values
  { name: 'config not JSON', args: () => ['serve', '--config', '/etc/hostname'], code: 2, says: /is not valid JSON/ },
  { name: 'config port as string', args: () => ['serve', '--config', config('port.json', { ...quiet, exporters: { prometheus: { port: '9464' } } })], code: 2, says: /exporters\.prometheus\.port: expected an integer 0-65535, got "9464"/ },
  { name: 'config negative ttl', args: () => ['serve', '--config', config('ttl.json', { ...quiet, guard: { autoDeny: { kinds: ['port_scan'], ttl: '-5m' } } })], code: 2, says: /config\.guard\.autoDeny\.ttl: bad duration '-5m'/ },
  { name: 'webhook to the metadata service', args: () => ['serve', '--config', config('meta.json', { ...quiet, exporters: { alerts: { webhook: 'http://169.254.169.254/latest' } } })], code: 2, says: /169\.254\.169\.254 is a cloud metadata service address; refused as a webhook target/ },
  { name: 'web config with a plaintext password', args: () => ['serve', '--config', config('web.json', { ...quiet, exporters: { prometheus: { port: 0, webConfigFile: file('web.yml', 'basic_auth_users:\n  admin: hunter2\n') } } })], code: 2, says: /basic_auth_users\.admin: expected a bcrypt hash/ },
  // unknown hosts and addresses
  { name: 'prometheus host not local', args: () => ['serve', '--config', config('host.json', { ...quiet, exporters: { prometheus: { port: 0, host: '192.0.2.1' } } })], code: 2, says: /exporters\.prometheus: cannot listen on 192\.0\.2\.1:0: host '192\.0\.2\.1' is not an address of this host/ },
  { name: 'prometheus host unresolvable', args: () => ['serve', '--config', config('name.json', { ...quiet, exporters: { prometheus: { port: 0, host: 'no-such-host.invalid' } } })], code: 2, says: /host 'no-such-host\.invalid' (does not resolve|could not be resolved): use an IP address/, isolated: true },
  { name: 'filter host name', args: () => ['packets', '-i', 'lo', 'host example.com'], code: 2, says: /bad host address 'example\.com'.*names are not resolved/ },
  { name: 'unknown interface', args: () => ['packets', '-i', 'nosuchif0'], code: 1, says: /no network interface named 'nosuchif0'/ },
];

const bpf = bpfAvailable('cli errors');

describe('every CLI failure is one line with the right exit code', () => {
  it.each(rows.map((r) => [r.name, r] as const))('%s', (_name, row) => {
    if (row.bpf && !bpf) return;
    const argv = [CLI, ...row.args()];
    // An isolated row gets a network namespace with nothing in it (not even lo up).
    const [cmd, args] = row.isolated ? ['unshare', ['--net', process.execPath, ...argv]] : [process.execPath, argv];
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, env: { ...process.env, TCPSCOPE_DEBUG: '' } });
    expect(r.signal, `${row.name}: killed (${r.signal}), stderr: ${r.stderr}`).toBeNull();
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines.join('\n')).not.toMatch(/^\s+at |^\w*Error: |node:internal/m);
    if (row.args().length === 0) {
      expect(r.status).toBe(2);
      expect(r.stdout).toMatch(/^usage: tcpscope COMMAND/m);
      return;
    }
    const report = lines.filter((l) => /^tcpscope( [\w-]+)?: /.test(l) && !/^tcpscope: listening on/.test(l));
    expect(report, `${row.name}: stderr was:\n${r.stderr}`).toHaveLength(1);
    expect(lines.at(-1)).toBe(report[0]);
    expect(report[0]).toMatch(row.says);
    expect(r.status, `${row.name}: ${report[0]}`).toBe(row.code);
  }, 40_000);

  it('TCPSCOPE_DEBUG=1 adds the detail after the line', () => {
    const r = spawnSync(process.execPath, [CLI, 'gen-types', '/etc/hostname'], { encoding: 'utf8', env: { ...process.env, TCPSCOPE_DEBUG: '1' } });
    expect(r.status).toBe(1);
    const [first, ...rest] = r.stderr.split('\n');
    expect(first).toMatch(/^tcpscope gen-types: not a usable BPF object file/);
    expect(rest.join('\n')).toMatch(/ElfError: not an ELF file[\s\S]*\n\s+at /);
  });
});

describe('pcapng options longer than their 16-bit length', () => {
  it('are cut at a character boundary; the file stays readable by us and by tcpdump', () => {
    // 3-byte characters, so the 65,535-byte cut falls on a character boundary only by design.
    const description = `${'x'.repeat(1)}${'€'.repeat(30_000)}`;
    const out = path.join(dir, 'long.pcapng');
    const w = PcapngWriter.create(out, { interfaces: [{ name: 'lo', description, linkType: 1, snaplen: 65535 }], application: 'a'.repeat(70_000) });
    const frame = new Uint8Array(60);
    frame[12] = 0x08; // IPv4 ethertype, the rest zero: tcpdump prints it as a (bad) IP packet
    w.writePacket(0, 0, 1000, frame, frame.length);
    w.close();
    const bytes = fs.readFileSync(out);
    const back = readPcapng(bytes);
    // The option after the description (if_tsresol) is still found: the description did not overrun it.
    expect(back.interfaces).toEqual([{ linkType: 1, snaplen: 65535, name: 'lo', tsresol: 9 }]);
    expect(back.packets).toHaveLength(1);
    // The description option itself: at most 65,535 bytes, valid UTF-8, a prefix of the original.
    const idb = bytes.indexOf(Buffer.from([1, 0, 0, 0]), 28); // after the SHB
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    let o = idb + 16;
    let desc: Buffer | undefined;
    while (view.getUint16(o, true) !== 0) {
      const len = view.getUint16(o + 2, true);
      if (view.getUint16(o, true) === 3) desc = bytes.subarray(o + 4, o + 4 + len);
      o += 4 + ((len + 3) & ~3);
    }
    expect(desc!.length).toBeLessThanOrEqual(MAX_OPTION_BYTES);
    expect(desc!.length).toBeGreaterThan(MAX_OPTION_BYTES - 3);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(desc);
    expect(description.startsWith(text)).toBe(true);
    const printed = execFileSync('tcpdump', ['-n', '-r', out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(printed.trim().split('\n')).toHaveLength(1);
  });
});
