// SPDX-License-Identifier: MIT
// Kept for the paths that import it here; the functions live in lib/util (lib/bpf uses them too).
export { kernelVersion, kernelAtLeast } from '../util/kernel-version';
