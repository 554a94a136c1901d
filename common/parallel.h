/* Internal: run fn(arg, i) for i in [0, n) on n threads (the caller's
 * thread runs i = 0). Falls back to running them one after another if a
 * thread cannot be created, so it never fails. */
#ifndef DF11_PARALLEL_H
#define DF11_PARALLEL_H

void df11_parallel_run(int n, void (*fn)(void *arg, int i), void *arg);

#endif
