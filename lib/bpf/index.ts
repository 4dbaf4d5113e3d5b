// SPDX-License-Identifier: MIT
/**
 * tcpscope/bpf: the generic eBPF runtime. Open and load CO-RE objects, attach programs,
 * read maps, ring buffers and perf buffers from TypeScript.
 */
export { BpfObject } from './object';
export type { OpenOptions } from './object';
export { Program } from './program';
export type { XdpMode, XdpOptions, TcOptions, UprobeOptions, TestRunOptions, TestRunResult } from './program';
export { Link } from './link';
export { BpfMap, MapType, PerCpuMap, UpdateFlags } from './map';
export type { MapCodecs } from './map';
export { RecordReader } from './ringbuf';
export type { RecordDecoder, ReaderOptions, ReaderStats } from './ringbuf';
export { RecordBatch, ReleasedBatchError } from './batch';
export type { RecordView } from './batch';
export * as codecs from './codec';
export type { Codec } from './codec';
export { BpfError, BpfPermissionError, VerifierError, NotSupportedError, NotFoundError } from './errors';
export { interfaceIndex, interfaceName } from './netif';
export type { InterfaceRef } from './netif';
export { tracePipe } from './tracepipe';
export type { TraceLine } from './tracepipe';
export { tcpFrame, parseIp, TCP_FLAGS, tcpFlags, flagLetters } from './packet';
export type { TcpFrameOptions, TcpFlags, TcpFlagName } from './packet';
export { ensureBpffs, ensureTracefs, cgroup2Root, bpfPrivilege, PIN_ROOT } from './sys';
export { Btf } from './btf/parse';
export { decoderFor, encoderFor } from './btf/codec';
export { packageRoot, builtObjectPath } from './paths';
export { Skeleton, openSkeleton, loadSkeleton } from './skeleton';
export type { SkeletonSpec, SkeletonOptions, PerfBufferOptions } from './skeleton';
export { attachedPrograms } from './introspect';
export type { AttachedProgram } from './introspect';
