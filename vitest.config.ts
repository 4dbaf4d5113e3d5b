// SPDX-License-Identifier: MIT
import { defineConfig } from 'vitest/config';

// Unit tests: no BPF, no root, no network namespace (they pass as `nobody`). They run in
// parallel, first; `npm run test:unit` runs only them. A file not listed here is an
// integration test.
const UNIT = [
  'test/alert-rules.test.ts',
  'test/alerts.test.ts',
  'test/bounded.test.ts',
  'test/btf.test.ts',
  'test/classify-parse.test.ts',
  'test/cli.test.ts',
  'test/deploy.test.ts',
  'test/detect-logic.test.ts',
  'test/errors.test.ts',
  'test/export-otlp.test.ts',
  'test/export-prometheus.test.ts',
  'test/export.test.ts',
  'test/exposure.test.ts',
  'test/filter.test.ts',
  'test/fuzz/btf.test.ts',
  'test/fuzz/inputs.test.ts',
  'test/install.test.ts',
  'test/lazy-events.test.ts',
  'test/pcapng.test.ts',
  'test/shape.test.ts',
  'test/wait.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    projects: [
      // As many workers as cores (vitest's default leaves one out: none to spare on two).
      { extends: true, test: { name: 'unit', include: UNIT, maxWorkers: '100%', sequence: { groupOrder: 0 } } },
      // Integration tests attach programs to shared kernel objects (loopback, cgroups,
      // tracepoints): one file at a time keeps their traffic and counters from mixing, and
      // they start after the unit tests so that no parallel load skews their timing.
      {
        extends: true,
        test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: UNIT, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
