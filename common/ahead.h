/* Internal: a thread that does items 0 .. n - 1 in order, at most `depth`
 * items ahead of those its consumer has released: the read-ahead of the
 * direct readers (df11_pack's pieces, df11_unpack's payloads). */
#ifndef DF11_AHEAD_H
#define DF11_AHEAD_H

#include <pthread.h>
#include <stddef.h>

#include "df11.h"

typedef struct df11_ahead {
	size_t n, depth;
	/* Does item k; nonzero: it failed, the thread stops before
	 * counting it done. May wait on mu/cv (held by nobody then). */
	int (*work)(void *ctx, size_t k);
	void *ctx;
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t done;           /* items done */
	size_t released;       /* items the consumer is done with */
	int stop;              /* asked to stop */
	int exited;            /* the thread has returned */
	int running;           /* started, not yet stopped */
} df11_ahead;

/* Starts the thread on items 0 .. n - 1. */
df11_result df11_ahead_start(df11_ahead *A, size_t n, size_t depth,
			     int (*work)(void *ctx, size_t k), void *ctx);
/* Waits for item k: 1 once it is done, 0 if the thread stopped first. */
int df11_ahead_wait(df11_ahead *A, size_t k);
/* The consumer is done with items up to k. */
void df11_ahead_release(df11_ahead *A, size_t k);
/* Stops the thread, if running, and waits for it. */
void df11_ahead_stop(df11_ahead *A);

#endif
