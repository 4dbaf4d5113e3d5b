// Config for the vmtest self-test only (the project's suite uses the root
// vitest.config.ts, whose include does not cover vmtest/). vmtest/guest/vitest.sh
// runs it as: vitest run --config vmtest/selftest/vitest.config.mts
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['vmtest/selftest/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
  },
});
