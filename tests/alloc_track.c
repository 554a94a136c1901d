/* See alloc_track.h. The wrappers keep (pointer, size) of each live block
 * in a hash table so that frees of memory allocated elsewhere (libc,
 * cmocka) are ignored rather than miscounted. */
#include "tests/alloc_track.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t m, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t m, size_t n);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
int __wrap_posix_memalign(void **p, size_t a, size_t n);
char *__wrap_strdup(const char *s);

#define SLOTS (1u << 16)
static struct {
	void *p;
	size_t n;
} live[SLOTS];
static size_t live_bytes, base_bytes, peak_bytes, largest;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static size_t slot_of(void *p)
{
	return (size_t)(((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull >> 48) &
	       (SLOTS - 1);
}

static void note_request(size_t n)
{
	pthread_mutex_lock(&lock);
	if (n > largest)
		largest = n;
	pthread_mutex_unlock(&lock);
}

static void add(void *p, size_t n)
{
	if (!p)
		return;
	pthread_mutex_lock(&lock);
	for (size_t i = slot_of(p), k = 0; k < SLOTS; k++, i = (i + 1) & (SLOTS - 1)) {
		if (!live[i].p) {
			live[i].p = p;
			live[i].n = n;
			live_bytes += n;
			if (live_bytes - base_bytes > peak_bytes &&
			    live_bytes > base_bytes)
				peak_bytes = live_bytes - base_bytes;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
}

static void drop(void *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&lock);
	size_t i = slot_of(p);
	for (size_t k = 0; k < SLOTS && live[i].p; k++, i = (i + 1) & (SLOTS - 1)) {
		if (live[i].p == p) {
			live_bytes -= live[i].n;
			/* Re-insert the rest of the cluster (linear probing). */
			live[i].p = NULL;
			for (size_t j = (i + 1) & (SLOTS - 1); live[j].p;
			     j = (j + 1) & (SLOTS - 1)) {
				void *q = live[j].p;
				size_t m = live[j].n, s = slot_of(q);
				live[j].p = NULL;
				while (live[s].p)
					s = (s + 1) & (SLOTS - 1);
				live[s].p = q;
				live[s].n = m;
			}
			break;
		}
	}
	pthread_mutex_unlock(&lock);
}

void alloc_track_reset(void)
{
	pthread_mutex_lock(&lock);
	base_bytes = live_bytes;
	peak_bytes = largest = 0;
	pthread_mutex_unlock(&lock);
}

size_t alloc_track_peak(void)
{
	return peak_bytes;
}

size_t alloc_track_largest(void)
{
	return largest;
}

void *__wrap_malloc(size_t n)
{
	note_request(n);
	void *p = __real_malloc(n);
	add(p, n);
	return p;
}

void *__wrap_calloc(size_t m, size_t n)
{
	note_request(n && m > SIZE_MAX / n ? SIZE_MAX : m * n);
	void *p = __real_calloc(m, n);
	add(p, m * n);
	return p;
}

void *__wrap_realloc(void *p, size_t n)
{
	note_request(n);
	void *q = __real_realloc(p, n);
	if (q || n == 0) {
		drop(p);
		add(q, n);
	}
	return q;
}

void __wrap_free(void *p)
{
	drop(p);
	__real_free(p);
}

int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
	note_request(n);
	int r = __real_posix_memalign(p, a, n);
	if (r == 0)
		add(*p, n);
	return r;
}

char *__wrap_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = __wrap_malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}
