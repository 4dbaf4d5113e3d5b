// Config for the vmtest self-test only (the project's suite uses the root
// vitest.config.ts): vmtest/guest/vitest.sh runs it with
//   npx vitest run --config vmtest/selftest/vitest.config.ts
import path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: path.resolve(__dirname, '../..'),
  test: {
    include: ['vmtest/selftest/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
  },
});
