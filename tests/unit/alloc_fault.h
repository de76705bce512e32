/* Allocation failure injection for unit tests.
 *
 * A test linked with `alloc_fault_dep` (tests/unit/meson.build) has every malloc, calloc,
 * realloc and strdup of the program, libfdt_static included, routed through a counter
 * (the linker's --wrap). Armed, the n-th allocation from then on fails with ENOMEM, once
 * or from then on, so that a test can walk an operation through each of its allocations:
 *
 *     for (unsigned n = 1;; n++) {
 *         alloc_fault_arm(n, false);
 *         int rc = operation();
 *         bool hit = alloc_fault_hit();
 *         alloc_fault_disarm();
 *         if (!hit) { assert_int_equal(rc, 0); break; }   // ran with no failure
 *         assert_int_equal(rc, FDT_ENOMEM);                  // failed cleanly
 *     }
 *
 * ASan (make asan) then shows any leak or bad free on the failure paths. Allocations
 * inside libc itself (getaddrinfo, stdio) are not counted: only calls made by our code.
 * Thread: any (atomic counter). */
#ifndef FDT_TESTS_UNIT_ALLOC_FAULT_H
#define FDT_TESTS_UNIT_ALLOC_FAULT_H

#include <stdbool.h>

/* Fail the n-th allocation (1 = the next one) from now on; with `sticky` every
 * allocation after it fails too. */
void alloc_fault_arm(unsigned n, bool sticky);
/* Stop failing; returns how many allocations failed while armed. */
unsigned alloc_fault_disarm(void);
/* Whether an allocation failed since the last arm. */
bool alloc_fault_hit(void);

#endif
