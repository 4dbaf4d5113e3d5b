// SPDX-License-Identifier: MIT
// Unit tests of how addon failures become the typed errors users act on.
import { describe, expect, it } from 'vitest';
import { BpfPermissionError, VerifierError, translateError } from '../lib/bpf/errors';
import { missingBpfCapabilities } from '../lib/bpf/caps';

function nativeError(code: string, errno: number, libbpfLog = ''): Error {
  return Object.assign(new Error(`failed: ${code}`), { code, errno, libbpfLog });
}

const LOG = "libbpf: prog 'handle': -- BEGIN PROG LOAD LOG --\n0: (b7) r0 = 0\nR1 invalid mem access 'scalar'\nprocessed 12 insns\n-- END PROG LOAD LOG --\n";

describe('translateError', () => {
  it('a verifier rejection names the program and carries its log', () => {
    const e = translateError(nativeError('EACCES', 13, LOG), 'load x.bpf.o');
    expect(e).toBeInstanceOf(VerifierError);
    expect((e as VerifierError).program).toBe('handle');
    expect((e as VerifierError).message).toMatch(/the verifier rejected program 'handle' \(EACCES\)[\s\S]*invalid mem access/);
  });

  it('EAGAIN from the verifier says signals interrupted it (a profiler), not that the program is wrong', () => {
    const e = translateError(nativeError('EAGAIN', 11, LOG), 'load x.bpf.o');
    expect(e).toBeInstanceOf(VerifierError);
    expect((e as Error).message).toMatch(/interrupted by signals[\s\S]*SIGPROF[\s\S]*before starting the profiler/);
    expect((e as Error).message).not.toMatch(/rejected/);
  });

  it('EPERM names the capabilities', () => {
    const e = translateError(nativeError('EPERM', 1), 'load x.bpf.o');
    expect(e).toBeInstanceOf(BpfPermissionError);
    // Root is told something else refused; a user is told which capabilities it lacks.
    const missing = missingBpfCapabilities();
    expect((e as Error).message).toMatch(missing.length ? new RegExp(`lacks ${missing.join(' and ')}: run with sudo`) : /has CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN/);
  });
});
