// SPDX-License-Identifier: MIT
// Errors carry what failed, the errno, and what the user can do about it.
import fs from 'node:fs';
import { missingBpfCapabilities } from './caps';
import { kernelAtLeast } from '../util/kernel-version';

/** Raised when a kernel or libbpf operation fails. */
export class BpfError extends Error {
  override readonly name: string = 'BpfError';
  /** Positive errno, e.g. 1 for EPERM. */
  readonly errno: number;
  /** Errno name, e.g. 'EPERM'. */
  readonly code: string;
  /** What libbpf said while the operation ran (never printed to stderr). */
  readonly libbpfLog: string;

  constructor(message: string, details: { errno?: number; code?: string; libbpfLog?: string; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.errno = details.errno ?? 0;
    this.code = details.code ?? 'EUNKNOWN';
    this.libbpfLog = details.libbpfLog ?? '';
  }
}

/** The kernel refused for lack of privilege. */
export class BpfPermissionError extends BpfError {
  override readonly name = 'BpfPermissionError';
}

/** The verifier rejected a program; `verifierLog` holds its explanation. */
export class VerifierError extends BpfError {
  override readonly name = 'VerifierError';
  readonly program: string | undefined;
  readonly verifierLog: string;
  constructor(message: string, details: { errno?: number; code?: string; libbpfLog?: string; program?: string; verifierLog: string }) {
    super(message, details);
    this.program = details.program;
    this.verifierLog = details.verifierLog;
  }
}

/** The running kernel lacks what was asked for (an attach type, a map type, BTF...). */
export class NotSupportedError extends BpfError {
  override readonly name = 'NotSupportedError';
}

/** A name (program, map, interface, global) that does not exist. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

/** What to do about EPERM, naming only the capabilities this process lacks. */
export function privilegeHint(): string {
  const missing: string[] = missingBpfCapabilities();
  if (!missing.length) {
    if (memlockLimited()) {
      return 'this process has the capabilities, but kernels before 5.11 also charge BPF memory to RLIMIT_MEMLOCK: raise it (ulimit -l unlimited, or LimitMEMLOCK=infinity in a systemd unit)';
    }
    return 'this process has CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, so something else refused it (a kernel lockdown, an LSM such as SELinux or AppArmor, or a part that needs root: see the message)';
  }
  const names = missing.map((c) => c.toLowerCase()).join(',');
  return `this process lacks ${missing.join(' and ')}: run with sudo, or grant ${missing.length > 1 ? 'them' : 'it'} (e.g. \`setcap ${names}+ep $(which node)\`)`;
}

/** Kernels before 5.11 account BPF maps against RLIMIT_MEMLOCK (later ones use memcg): true when that limit applies and is finite. */
function memlockLimited(): boolean {
  try {
    if (kernelAtLeast(5, 11)) return false;
    const limits = fs.readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max locked memory\s+(\S+)/m.exec(limits);
    return m !== null && m[1] !== 'unlimited';
  } catch {
    return false;
  }
}

export const PRIVILEGE_HINT =
  'loading and attaching BPF programs needs root or the capabilities CAP_BPF, CAP_PERFMON and ' +
  'CAP_NET_ADMIN (CAP_SYS_ADMIN on kernels before 5.8); run with sudo or grant them, e.g. ' +
  '`setcap cap_bpf,cap_perfmon,cap_net_admin+ep $(which node)`';

interface NativeErrorShape {
  message: string;
  errno?: number;
  code?: string;
  libbpfLog?: string;
  operation?: string;
}

function isNativeError(e: unknown): e is Error & NativeErrorShape {
  return e instanceof Error && typeof (e as { errno?: unknown }).errno === 'number';
}

const VERIFIER_LOG = /prog '([^']+)': -- BEGIN PROG LOAD LOG --\n([\s\S]*?)-- END PROG LOAD LOG --/;

/** What an errno means for the user, for the errors of writing output. */
const WHAT_TO_DO: Readonly<Record<string, string>> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is exhausted',
  EFBIG: 'the file is too large',
  EPIPE: 'the reader of the pipe went away',
};

/** The addon's message without its operation when the context already says it. */
function reasonOf(e: Error & NativeErrorShape, context: string): string {
  const op = e.operation;
  if (op && e.message.startsWith(`${op}: `) && (context.startsWith(op) || context.endsWith(op))) return e.message.slice(op.length + 2);
  return e.message;
}

/** Turns an addon error into the typed error a user can act on. */
export function translateError(e: unknown, context: string): unknown {
  if (!isNativeError(e)) return e;
  const errno = e.errno ?? 0;
  const code = e.code ?? 'EUNKNOWN';
  const libbpfLog = e.libbpfLog ?? '';
  const details = { errno, code, libbpfLog, cause: e };
  const verifier = VERIFIER_LOG.exec(libbpfLog);
  if (verifier) {
    const [, program, log] = verifier;
    const tail = (log ?? '').trim().split('\n').slice(-12).join('\n');
    if (code === 'EAGAIN') {
      // The verifier gives up with EAGAIN when a signal is pending; libbpf retries a few
      // times. A sampling profiler's SIGPROF (node --cpu-prof) arrives more often than that.
      return new VerifierError(
        `${context}: verifying program '${program}' was interrupted by signals each time libbpf tried (EAGAIN): ` +
          'a sampling CPU profiler (SIGPROF, e.g. node --cpu-prof) or a busy timer signal keeps interrupting the verifier; ' +
          'load the object before starting the profiler, or retry. Last lines of the verifier log:\n' + tail,
        { ...details, program, verifierLog: log ?? '' },
      );
    }
    return new VerifierError(
      `${context}: the verifier rejected program '${program}' (${code}). Last lines of the verifier log:\n${tail}`,
      { ...details, program, verifierLog: log ?? '' },
    );
  }
  if (code === 'EPERM' || code === 'EACCES') {
    return new BpfPermissionError(`${context}: ${reasonOf(e, context)}. ${privilegeHint()}`, details);
  }
  if (code === 'ENOTSUPP' || code === 'EOPNOTSUPP') {
    return new NotSupportedError(`${context}: ${reasonOf(e, context)}`, details);
  }
  const lastLog = libbpfLog
    .trim()
    .split('\n')
    .filter(Boolean)
    .slice(-3)
    .map((line) => line.replace(/^libbpf: /, ''))
    .join('\n');
  const hint = WHAT_TO_DO[code];
  return new BpfError(`${context}: ${reasonOf(e, context)}${hint ? ` — ${code} (${hint})` : ''}${lastLog ? `\nlibbpf: ${lastLog}` : ''}`, details);
}

/** Runs a native call and rethrows its failure as a typed error. */
export function call<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw translateError(e, context);
  }
}
