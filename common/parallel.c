#include "common/parallel.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct job {
	void (*fn)(void *, int);
	void *arg;
	int i;
} job;

static void *trampoline(void *p)
{
	job *j = p;
	j->fn(j->arg, j->i);
	return NULL;
}

void df11_parallel_run(int n, void (*fn)(void *arg, int i), void *arg)
{
	if (n <= 1) {
		if (n == 1)
			fn(arg, 0);
		return;
	}
	pthread_t *tid = calloc((size_t)n, sizeof *tid);
	job *jobs = calloc((size_t)n, sizeof *jobs);
	char *started = calloc((size_t)n, 1);
	if (!tid || !jobs || !started) {
		for (int i = 0; i < n; i++)
			fn(arg, i);
		goto out;
	}
	for (int i = 1; i < n; i++) {
		jobs[i] = (job){fn, arg, i};
		started[i] = pthread_create(&tid[i], NULL, trampoline, &jobs[i]) == 0;
	}
	fn(arg, 0);
	for (int i = 1; i < n; i++) {
		if (started[i])
			pthread_join(tid[i], NULL);
		else
			fn(arg, i);
	}
out:
	free(tid);
	free(jobs);
	free(started);
}
