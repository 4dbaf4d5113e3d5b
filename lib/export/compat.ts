// SPDX-License-Identifier: MIT
// Compile-time checks that the probes' events, the syn-counts snapshot and the detectors'
// alerts fit the metrics model's and the sinks' input types. The model declares its own
// small input types (so it does not depend on every probe field); this file is where tsc
// notices if a probe renames a field the model reads. It emits no code.
import type { ConnectionEvent } from '../probes/connections';
import type { DropEvent } from '../probes/drops';
import type { PacketEvent } from '../probes/packets';
import type { ResetEvent } from '../probes/resets';
import type { RetransmitEvent } from '../probes/retransmits';
import type { RttEvent } from '../probes/rtt';
import type { SynCounter } from '../probes/syn-counts';
import type { ProbeStream } from '../probes/stream';
import type { DetectAlert } from '../detect/alert';
import type { Alert } from '../alerts/types';
import type {
  ConnectionInput, DropInput, PacketInput, ProbeStatsSource, ResetInput, RetransmitInput, RttInput, SynCountsSource,
} from './metrics';

type Fits<T extends U, U> = T;

export type CompatChecks = [
  Fits<PacketEvent, PacketInput>,
  Fits<ConnectionEvent, ConnectionInput>,
  Fits<RetransmitEvent, RetransmitInput>,
  Fits<ResetEvent, ResetInput>,
  Fits<DropEvent, DropInput>,
  Fits<RttEvent, RttInput>,
  Fits<SynCounter, SynCountsSource>,
  Fits<ProbeStream<unknown, unknown>, ProbeStatsSource>,
  Fits<DetectAlert, Alert>,
];
