// SPDX-License-Identifier: MIT
// Alerts: the type detectors emit and the sinks that deliver them.
export * from './types';
export * from './sinks';
export * from './webhook';
