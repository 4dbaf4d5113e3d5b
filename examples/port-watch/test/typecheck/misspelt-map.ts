// SPDX-License-Identifier: MIT
// Must NOT compile: test/types.test.ts checks that tsc rejects the misspelt map name.
import { load } from '../../src/port_watch.skel.js';

using skel = load({ rodata: { watched_port: 8080 } });
export const hits = skel.maps.hits_by_prot.get(8080);
