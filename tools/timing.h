/* Wall-clock time and order statistics for the programs and benchmarks. */
#ifndef DF11_TOOLS_TIMING_H
#define DF11_TOOLS_TIMING_H

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double df11_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline double df11_now_ms(void) { return 1e3 * df11_now_s(); }

static inline int df11_cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

/* Nearest-rank percentile p (0..100) of v[0..n), which is left as it is;
 * 0 for no values. */
static inline double df11_percentile(const double *v, int n, double p)
{
	double *s = n > 0 ? malloc((size_t)n * sizeof *s) : NULL;
	if (!s)
		return 0.0;
	memcpy(s, v, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, df11_cmp_double);
	int k = (int)(p / 100.0 * n + 0.999999);
	k = k < 1 ? 1 : k > n ? n : k;
	double r = s[k - 1];
	free(s);
	return r;
}

/* The median of v[0..n) (the mean of the middle two for even n), which is
 * left as it is; 0 for no values. */
static inline double df11_median(const double *v, int n)
{
	double *s = n > 0 ? malloc((size_t)n * sizeof *s) : NULL;
	if (!s)
		return 0.0;
	memcpy(s, v, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, df11_cmp_double);
	double r = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
	free(s);
	return r;
}

#endif
