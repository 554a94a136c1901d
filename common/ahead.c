/* Ordered read-ahead on a thread of its own (common/ahead.h). */
#include "common/ahead.h"

#include "common/error.h"

static void *ahead_main(void *arg)
{
	df11_ahead *A = arg;
	for (size_t k = 0; k < A->n; k++) {
		pthread_mutex_lock(&A->mu);
		while (k - A->released >= A->depth && !A->stop)
			pthread_cond_wait(&A->cv, &A->mu);
		int stop = A->stop;
		pthread_mutex_unlock(&A->mu);
		if (stop || A->work(A->ctx, k))
			break;
		pthread_mutex_lock(&A->mu);
		A->done = k + 1;
		pthread_cond_broadcast(&A->cv);
		pthread_mutex_unlock(&A->mu);
	}
	pthread_mutex_lock(&A->mu);
	A->exited = 1;
	pthread_cond_broadcast(&A->cv);
	pthread_mutex_unlock(&A->mu);
	return NULL;
}

df11_result df11_ahead_start(df11_ahead *A, size_t n, size_t depth,
			     int (*work)(void *ctx, size_t k), void *ctx)
{
	*A = (df11_ahead){.n = n, .depth = depth ? depth : 1, .work = work,
			  .ctx = ctx};
	pthread_mutex_init(&A->mu, NULL);
	pthread_cond_init(&A->cv, NULL);
	if (pthread_create(&A->tid, NULL, ahead_main, A)) {
		pthread_mutex_destroy(&A->mu);
		pthread_cond_destroy(&A->cv);
		return df11_fail(DF11_NOMEM, "cannot start a reader thread");
	}
	A->running = 1;
	return DF11_OK;
}

int df11_ahead_wait(df11_ahead *A, size_t k)
{
	pthread_mutex_lock(&A->mu);
	while (A->done <= k && !A->exited)
		pthread_cond_wait(&A->cv, &A->mu);
	int ok = A->done > k;
	pthread_mutex_unlock(&A->mu);
	return ok;
}

void df11_ahead_release(df11_ahead *A, size_t k)
{
	pthread_mutex_lock(&A->mu);
	if (A->released < k + 1)
		A->released = k + 1;
	pthread_cond_broadcast(&A->cv);
	pthread_mutex_unlock(&A->mu);
}

void df11_ahead_stop(df11_ahead *A)
{
	if (!A->running)
		return;
	pthread_mutex_lock(&A->mu);
	A->stop = 1;
	pthread_cond_broadcast(&A->cv);
	pthread_mutex_unlock(&A->mu);
	pthread_join(A->tid, NULL);
	pthread_mutex_destroy(&A->mu);
	pthread_cond_destroy(&A->cv);
	A->running = 0;
}
