/*
 * Allocation accounting for the hostile-input tests: the test executable is
 * linked with -Wl,--wrap=malloc,... (tests/hostile.cmake), so every heap
 * allocation made by libdf11 (a static library) goes through counters here.
 * A test then checks that a hostile input of S bytes never made the library
 * hold more than a small multiple of S: a header that claims 2^60 elements
 * must be refused, not allocated for.
 */
#ifndef DF11_ALLOC_TRACK_H
#define DF11_ALLOC_TRACK_H

#include <stddef.h>

/* Zeroes the peak and largest-request counters (live bytes are kept). */
void alloc_track_reset(void);
/* Most bytes live at once since the last reset, above the live bytes at
 * the reset. */
size_t alloc_track_peak(void);
/* Largest single request since the last reset (even a failed one). */
size_t alloc_track_largest(void);

#endif
