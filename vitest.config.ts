// SPDX-License-Identifier: MIT
import { defineConfig } from 'vitest/config';

// Integration tests attach programs to shared kernel objects (loopback, cgroups, tracepoints);
// running files one at a time keeps their traffic and counters from mixing.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
