// SPDX-License-Identifier: MIT
// The CLI as a user runs it: a separate process, exit codes, messages.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, objectPath } from './helpers/bpf';
import { commands } from '../lib/cli/commands';
import { parseCommandArgs, didYouMean } from '../lib/cli/command';

const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');

function tcpscope(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('tcpscope CLI', () => {
  it('lists its commands and exits 2 without one', () => {
    const r = tcpscope();
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/usage: tcpscope COMMAND/);
    expect(r.stdout).toMatch(/gen-types/);
    expect(r.stdout).toMatch(/cleanup/);
  });

  it('names an unknown command and an unknown option', () => {
    expect(tcpscope('frobnicate')).toMatchObject({ status: 2, stderr: expect.stringMatching(/unknown command 'frobnicate'/) });
    const r = tcpscope('cleanup', '--bogus');
    expect(r.status).toBe(2);
    // One line naming the option and where to look, not a usage dump.
    expect(r.stderr).toBe("tcpscope cleanup: unknown option '--bogus' (run 'tcpscope cleanup --help' for its options)\n");
  });

  it('gen-types writes declarations that match the object and compile', () => {
    const r = tcpscope('gen-types', objectPath('rt_attach'));
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/interface StateEvent\b/);
    // The program's own types only (maps, globals, ring records), not the kernel structs
    // it reads; --all emits every named type.
    expect(r.stdout).toMatch(/interface SynKey\b/);
    expect(r.stdout).not.toMatch(/interface (SkBuff|Sock|Tcphdr)\b/);
    expect(tcpscope('gen-types', objectPath('rt_attach'), '--all').stdout).toMatch(/interface SkBuff\b/);
    expect(r.stdout).toMatch(/ts_ns: bigint/);
    expect(r.stdout).toMatch(/comm: string/);
    expect(r.stdout).toMatch(/saddr: Uint8Array/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpscope-gentypes-'));
    try {
      const file = path.join(dir, 'types.ts');
      expect(tcpscope('gen-types', objectPath('rt_attach'), '-t', 'state_event', '-o', file).status).toBe(0);
      const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--erasableSyntaxOnly', '--isolatedModules', file], { encoding: 'utf8' });
      expect(tsc.stdout + tsc.stderr).toBe('');
      expect(tsc.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('vmtest: resolves kernels per architecture (7.x: the newest 7 series) and refuses bad arguments in one line', () => {
    const list = tcpscope('vmtest', '--kernel', '6.1,7.x', '--list', '--', 'npx', 'vitest', 'run');
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(/^kernels: 6\.1 7\.\d+$/m);
    expect(list.stdout).toMatch(/command \(in .*\): npx vitest run/);
    const arm = tcpscope('vmtest', '--arch', 'arm64', '--kernel', '6.1,6.12', '--list', '--', 'true');
    expect(arm.stdout).toMatch(/^kernels: arm64 6\.1 arm64 6\.12$/m);
    const cases: Array<[string[], RegExp]> = [
      [['vmtest', '--kernel', '6.1'], /^tcpscope vmtest: vmtest needs the command to run after --/],
      [['vmtest', '--arch', 'sparc', '--', 'true'], /^tcpscope vmtest: unknown architecture 'sparc': use x86_64 or arm64/],
      [['vmtest', '--jobs', 'many', '--', 'true'], /^tcpscope vmtest: --jobs takes a number of VMs, got 'many'/],
      [['vmtest', '--project', '/nonexistent', '--', 'true'], /^tcpscope vmtest: --project \/nonexistent: no such directory/],
      [['vmtest', '--kernel', '9.9', '--list', '--', 'true'], /^vmtest: error: kernel '9\.9' is not listed for x86_64/],
    ];
    for (const [args, message] of cases) {
      const r = tcpscope(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  });

  it('gen-types names a missing file', () => {
    const r = tcpscope('gen-types', '/nonexistent.bpf.o');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no such file: \/nonexistent\.bpf\.o/);
  });

  it('names the closest command and option on a typo', () => {
    const cmd = tcpscope('retrnas');
    expect(cmd.status).toBe(2);
    expect(cmd.stderr).toMatch(/unknown command 'retrnas' \(did you mean 'retrans'\?\)/);
    const opt = tcpscope('conns', '--stats');
    expect(opt.status).toBe(2);
    expect(opt.stderr).toMatch(/unknown option '--stats' \(did you mean --states\?\)/);
    expect(opt.stderr).not.toMatch(/at .*\.js:\d+/);
    expect(didYouMean('xyzzy', ['packets', 'conns'])).toBeUndefined();
  });

  it('help CMD and CMD --help describe every option, with examples', () => {
    for (const c of commands) {
      const viaHelp = tcpscope('help', c.name);
      expect(viaHelp.status).toBe(0);
      expect(tcpscope(c.name, '--help').stdout).toBe(viaHelp.stdout);
      for (const [name, def] of Object.entries(c.options)) {
        expect(def.help, `${c.name} --${name} has a description`).toBeTruthy();
        expect(viaHelp.stdout).toContain(`--${name}`);
        expect(viaHelp.stdout).toContain(def.help!);
      }
      if (c.name !== 'gen-types' && c.name !== 'cleanup') expect(viaHelp.stdout, c.name).toMatch(/examples:\n  tcpscope /);
    }
    expect(tcpscope('help', 'nosuch').status).toBe(2);
  }, 120_000); // two CLI processes per command, one after another: minutes on a loaded machine

  it('parses options as getopt does: values starting with -, bundles, --name=value, counted flags, --', () => {
    const packets = commands.find((c) => c.name === 'packets')!;
    const a = parseCommandArgs(packets, ['-nn', '-vv', '-c5', '-i', 'lo', '--snaplen=96', '-s', '96', '--', '-tcp']);
    expect(a.values).toMatchObject({ numeric: '2', verbose: '2', count: '5', interface: ['lo'], snaplen: '96' });
    expect(a.positionals).toEqual(['-tcp']);
    expect(parseCommandArgs(packets, ['-c', '-1']).values['count']).toBe('-1'); // then refused as a bad count
    expect(() => parseCommandArgs(packets, ['-s', '96', '-s', '80'])).toThrow(/-s given twice/);
    expect(() => parseCommandArgs(packets, ['-c'])).toThrow(/-c needs a value \(N\)/);
    expect(() => parseCommandArgs(packets, ['-q'])).toThrow(/unknown option '-q'/);
    expect(() => parseCommandArgs(packets, ['--json=yes'])).toThrow(/--json takes no value/);
    expect(() => parseCommandArgs(packets, ['--constructor'])).toThrow(/unknown option '--constructor'/);
    // packets -d: tcpdump's "dump the compiled filter"; -d DURATION still works, with a warning.
    expect(parseCommandArgs(packets, ['-d', 'tcp']).values).toMatchObject({ 'print-filter': true });
    const old = parseCommandArgs(packets, ['-d', '10s', '-i', 'lo']);
    expect(old.values).toMatchObject({ duration: '10s', 'print-filter': false });
    expect(old.warnings[0]).toMatch(/-d DURATION is deprecated/);
  });

  it('packets -d prints the compiled filter without capturing', () => {
    const r = tcpscope('packets', '-d', 'port 80');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\S/);
    expect(r.stderr).toBe('');
  });

  it('a man page and bash/zsh completion generated from the same option tables', () => {
    const man = tcpscope('man');
    expect(man.status).toBe(0);
    expect(man.stdout).toMatch(/^\.TH TCPSCOPE 1/);
    for (const c of commands) expect(man.stdout).toContain(`.B tcpscope ${c.name}`);
    const rendered = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z'], { input: man.stdout, encoding: 'utf8' });
    expect(rendered.status).toBe(0);
    expect(rendered.stderr).toBe('');
    const bash = tcpscope('completion', 'bash');
    expect(bash.status).toBe(0);
    // Load it in bash and ask for completions the way the shell does.
    const probe = spawnSync('bash', ['-c', `${bash.stdout}\nCOMP_WORDS=(tcpscope con); COMP_CWORD=1; _tcpscope; echo "\${COMPREPLY[*]}"; COMP_WORDS=(tcpscope conns --st); COMP_CWORD=2; _tcpscope; echo "\${COMPREPLY[*]}"; COMP_WORDS=(tcpscope rtt -b ''); COMP_CWORD=3; _tcpscope; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' });
    expect(probe.stderr).toBe('');
    expect(probe.stdout.split('\n').slice(0, 3)).toEqual(['conns', '--states', 'all local-port remote-addr']);
    const zsh = tcpscope('completion', 'zsh');
    expect(zsh.status).toBe(0);
    expect(zsh.stdout).toMatch(/^#compdef tcpscope/);
    for (const c of commands) expect(zsh.stdout).toContain(`_tcpscope_${c.name.replace(/-/g, '_')}() {`);
    // zsh parses it and, loaded after compinit, registers _tcpscope for the command.
    const loaded = spawnSync('zsh', ['-f', '-c', `autoload -Uz compinit && compinit -u -D\n${zsh.stdout}\nprint -r -- $_comps[tcpscope]`], { encoding: 'utf8' });
    expect(loaded.stderr).toBe('');
    expect(loaded.stdout.trim()).toBe('_tcpscope');
    expect(tcpscope('completion', 'fish').status).toBe(2);
  });
});
