/* SPDX-License-Identifier: MIT
 *
 * Debian's libbpf.a is compiled for executables (PIE): it reaches glibc's `stderr` with a
 * pc-relative load that assumes the executable holds a copy of the variable, which a shared
 * object such as a Node addon cannot satisfy. This hidden definition, pointing at the same
 * FILE glibc's `stderr` starts with, satisfies that reference inside the addon;
 * scripts/prebuild.js links it only into the prebuilt (static) addon. */
#include <stdio.h>

extern FILE _IO_2_1_stderr_;
__attribute__((visibility("hidden"))) FILE *stderr = &_IO_2_1_stderr_;
