// SPDX-License-Identifier: MIT
import { defineConfig } from 'vitest/config';

// The probe attaches to loopback: one test file at a time keeps counts from mixing.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 30_000,
  },
});
