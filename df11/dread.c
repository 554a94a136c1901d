/* Direct reads of a cold container's payloads (df11/dread.h). */
#include "df11/dread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/ahead.h"
#include "common/error.h"
#include "df11/safetensors.h"
#include "df11/xxh.h"

/* O_DIRECT wants file offsets, lengths and memory aligned to the device's
 * block: 4096 covers every common one. */
#define DIO_ALIGN ((uint64_t)4096)
/* Read and hashed a chunk at a time, so the hash finds it in cache. */
#define DIO_CHUNK ((uint64_t)2 << 20)
/* The item read, or left to the mapping. */
typedef struct slot {
	const uint8_t *p;      /* its bytes in buf, or NULL: from the mapping */
	df11_result r;
} slot;

struct df11_dread {
	int fd;                /* O_DIRECT */
	const char *path;
	const uint8_t *map;
	const df11_dread_item *items;
	size_t n;
	/* The largest item's reads, huge pages, reused: the next item is
	 * read once the caller has released the one before. */
	uint8_t *buf;
	uint64_t cap;
	slot s;                /* of the last item read */
	XXH3_state_t *st;
	df11_ahead A;          /* the thread, one item ahead */
	int refused;           /* the file system refused a direct read */
	int err;               /* errno of a failed read; 0: the file shrank */
};

/* The aligned file range that holds an item. */
static void item_span(const df11_dread_item *it, uint64_t *a, uint64_t *z)
{
	*a = it->off & ~(DIO_ALIGN - 1);
	*z = (it->off + it->len + DIO_ALIGN - 1) & ~(DIO_ALIGN - 1);
}

/* Reads item k. A slot left without bytes (p NULL, r OK) sends the
 * caller to the mapping: an item in the page cache, or one that could
 * not be read directly (no memory, O_DIRECT refused). */
static void read_item(df11_dread *R, size_t k)
{
	const df11_dread_item *it = &R->items[k];
	slot *S = &R->s;
	S->p = NULL;
	S->r = DF11_OK;
	if (R->refused || !df11_mostly_uncached(R->map + it->off, it->len))
		return;
	if (!R->buf && !(R->buf = df11_huge_map((size_t)R->cap)))
		return;
	uint64_t a, z;
	item_span(it, &a, &z);
	uint8_t *buf = R->buf;
	XXH3_64bits_reset(R->st);
	uint64_t e = it->off + it->len;
	for (uint64_t at = a; at < e;) {
		uint64_t want = z - at < DIO_CHUNK ? z - at : DIO_CHUNK;
		ssize_t g = at % DIO_ALIGN ? 0 :
			    pread(R->fd, buf + (at - a), (size_t)want, (off_t)at);
		if (g < 0 && errno == EINTR)
			continue;
		if (g < 0 && errno == EINVAL && at == a) {
			R->refused = 1;
			return;
		}
		if (g <= 0) {
			S->r = DF11_IO;
			R->err = g < 0 ? errno : 0;
			return;
		}
		uint64_t hb = at > it->off ? at : it->off;
		uint64_t he = at + (uint64_t)g < e ? at + (uint64_t)g : e;
		if (he > hb)
			XXH3_64bits_update(R->st, buf + (hb - a),
					   (size_t)(he - hb));
		at += (uint64_t)g;
	}
	if (XXH3_64bits_digest(R->st) != it->sum)
		S->r = DF11_CHECKSUM;
	else
		S->p = buf + (it->off - a);
}

/* The thread's work: item k read (or left to the mapping); nonzero when
 * a read failed, which ends the reading there. */
static int dread_work(void *ctx, size_t k)
{
	df11_dread *R = ctx;
	read_item(R, k);
	return R->s.r == DF11_IO;
}

df11_result df11_dread_start(const char *path, const uint8_t *map,
			     const df11_dread_item *items, size_t n,
			     df11_dread **R_ret)
{
	*R_ret = NULL;
	if (!n)
		return DF11_OK;
	df11_dread *R = calloc(1, sizeof *R);
	if (!R || !(R->st = XXH3_createState())) {
		free(R);
		return df11_fail(DF11_NOMEM, "direct reader");
	}
	R->path = path;
	R->map = map;
	R->items = items;
	R->n = n;
	for (size_t k = 0; k < n; k++) {
		uint64_t a, z;
		item_span(&items[k], &a, &z);
		if (R->cap < z - a)
			R->cap = z - a;
	}
	R->cap = (R->cap + DF11_HUGE_PAGE - 1) & ~(uint64_t)(DF11_HUGE_PAGE - 1);
	/* A file system without O_DIRECT: everything from the mapping. */
	R->fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (R->fd < 0) {
		XXH3_freeState(R->st);
		free(R);
		return DF11_OK;
	}
	df11_result r = df11_ahead_start(&R->A, n, 1, dread_work, R);
	if (r) {
		df11_dread_free(R);
		return r;
	}
	*R_ret = R;
	return DF11_OK;
}

df11_result df11_dread_get(df11_dread *R, size_t k, const uint8_t **p_ret)
{
	*p_ret = NULL;
	const slot *S = &R->s;
	if (!df11_ahead_wait(&R->A, k))
		return R->err ? df11_fail_errno(DF11_IO, R->err, "%s", R->path)
			      : df11_fail(DF11_IO, "%s: file shrank while read",
					  R->path);
	if (S->r)
		return df11_fail(S->r, "stored bytes differ from their checksum");
	*p_ret = S->p;
	return DF11_OK;
}

void df11_dread_release(df11_dread *R, size_t k)
{
	df11_ahead_release(&R->A, k);
}

void df11_dread_free(df11_dread *R)
{
	if (!R)
		return;
	df11_ahead_stop(&R->A);
	if (R->buf)
		munmap(R->buf, (size_t)R->cap);
	close(R->fd);
	XXH3_freeState(R->st);
	free(R);
}
