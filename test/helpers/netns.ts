// SPDX-License-Identifier: MIT
export { createTestNet, TRAFFIC_SCRIPT } from '../../lib/net/testnet';
export type { TestNet } from '../../lib/net/testnet';
