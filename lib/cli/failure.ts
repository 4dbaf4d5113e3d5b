// SPDX-License-Identifier: MIT
// How a failed command is reported: one line saying what is wrong and what to do, and the exit
// code (2: the command line or configuration is wrong; 1: it could not be carried out). The
// full message and stack stay available with TCPSCOPE_DEBUG=1, for bug reports.
import { BpfError, BpfPermissionError, NotFoundError, VerifierError } from '../bpf/errors';
import { ElfError } from '../bpf/btf/elf';
import { BtfError } from '../bpf/btf/types';
import { ConfigError } from '../export/config';
import { FilterError } from '../filter/parse';
import { UsageError } from './command';
import { MissingPackageError } from '../util/optional';
import { GuardSafetyError } from '../guard';

export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

export interface Failure {
  exitCode: typeof EXIT_RUNTIME | typeof EXIT_USAGE;
  /** One line, without the `tcpscope COMMAND: ` prefix. */
  line: string;
}

/** What to do about a file-system errno, for a path the user gave. */
const FS_ADVICE: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory: check the path (its directory must exist)',
  ENOTDIR: 'a part of the path is not a directory: check the path',
  EISDIR: 'it is a directory: give a file',
  EACCES: 'permission denied: check its permissions, or run with sudo',
  EPERM: 'operation not permitted: check its permissions, or run with sudo',
  EROFS: 'the file system is read-only: write somewhere else',
  ENOSPC: 'the disk is full: free space or write somewhere else',
  EDQUOT: 'the disk quota is exhausted: free space or write somewhere else',
  EFBIG: 'the file is too large for this file system',
  EMFILE: 'too many open files: raise the limit (ulimit -n)',
  ENAMETOOLONG: 'the path is too long',
  ELOOP: 'too many symbolic links in the path',
  EEXIST: 'it already exists: remove it or choose another name',
  EPIPE: 'the reader of the output went away',
  EADDRINUSE: 'the address is already in use: choose another port or stop what listens there',
  EADDRNOTAVAIL: 'the address is not one of this host\'s: use a local address such as 127.0.0.1',
  ENOTFOUND: 'the host name does not resolve: check it',
  EIO: 'input/output error: it cannot be read as a regular file',
};

interface ErrnoLike { code?: unknown; syscall?: unknown; path?: unknown; hostname?: unknown }

function errnoFailure(e: Error & ErrnoLike): string | undefined {
  if (typeof e.code !== 'string' || !(e.code in FS_ADVICE) || typeof e.syscall !== 'string') return undefined;
  const what = typeof e.path === 'string' ? ` ${e.path}` : typeof e.hostname === 'string' ? ` ${e.hostname}` : '';
  return `cannot ${e.syscall}${what}: ${FS_ADVICE[e.code]} (${e.code})`;
}

/** The lines of a message that say what is wrong and what to do; usage synopses dropped. */
function essentialLines(message: string): string[] {
  const lines = message.split('\n').map((l) => l.trim());
  const synopsis = lines.findIndex((l) => /^usage:/i.test(l)); // the synopsis and its notes, up to the end
  return (synopsis < 0 ? lines : lines.slice(0, synopsis)).filter((l) => l && !/^libbpf:/.test(l));
}

function oneLine(message: string): string {
  return essentialLines(message).join(' ');
}

/** The report for `e`, thrown by command `command`. */
export function describeFailure(e: unknown, command: string): Failure {
  const help = `run 'tcpscope ${command} --help' for its options`;
  if (e instanceof UsageError) {
    const line = oneLine(e.message);
    return { exitCode: EXIT_USAGE, line: line.includes('--help') ? line : `${line} (${help})` };
  }
  // Its message already names the override (--force).
  if (e instanceof GuardSafetyError) return { exitCode: EXIT_USAGE, line: oneLine(e.message) };
  if (e instanceof ConfigError || e instanceof FilterError) return { exitCode: EXIT_USAGE, line: oneLine(e.message) };
  if (e instanceof MissingPackageError) return { exitCode: EXIT_RUNTIME, line: e.message };
  if (e instanceof VerifierError) {
    return { exitCode: EXIT_RUNTIME, line: `${essentialLines(e.message)[0] ?? e.message} (TCPSCOPE_DEBUG=1 prints the verifier log)` };
  }
  if (e instanceof BpfPermissionError || e instanceof BpfError || e instanceof NotFoundError) return { exitCode: EXIT_RUNTIME, line: oneLine(e.message) };
  if (e instanceof ElfError) return { exitCode: EXIT_RUNTIME, line: `not a usable BPF object file: ${oneLine(e.message)} (give a .bpf.o built by clang -target bpf -g)` };
  if (e instanceof BtfError) return { exitCode: EXIT_RUNTIME, line: `unusable BTF type information: ${oneLine(e.message)} (rebuild the object with clang -g)` };
  if (e instanceof RangeError) {
    if (/call stack/i.test(e.message)) return { exitCode: EXIT_RUNTIME, line: 'the input is nested too deeply to process: simplify it' };
    return { exitCode: EXIT_RUNTIME, line: `malformed or out-of-range input (${oneLine(e.message)}): check the file or number given` };
  }
  if (e instanceof Error) {
    const errno = errnoFailure(e as Error & ErrnoLike);
    if (errno) return { exitCode: EXIT_RUNTIME, line: errno };
    // Library option validation (TypeError naming the option) and anything else.
    if (e instanceof TypeError) return { exitCode: EXIT_RUNTIME, line: oneLine(e.message) };
    return { exitCode: EXIT_RUNTIME, line: `${oneLine(e.message) || e.name} (if this looks like a bug, rerun with TCPSCOPE_DEBUG=1 and report the output)` };
  }
  return { exitCode: EXIT_RUNTIME, line: `failed: ${String(e)}` };
}

/** True when the user asked for full messages and stacks. */
export function debugEnabled(): boolean {
  const v = process.env['TCPSCOPE_DEBUG'];
  return v !== undefined && v !== '' && v !== '0';
}

/** The debug detail printed after the one line when TCPSCOPE_DEBUG is set. */
export function failureDetail(e: unknown): string {
  if (e instanceof VerifierError) return `${e.message}\n${e.stack ?? ''}`;
  if (e instanceof BpfError && e.libbpfLog) return `${e.stack ?? e.message}\nlibbpf log:\n${e.libbpfLog}`;
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}
