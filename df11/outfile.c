/* Output files through O_DIRECT (df11/outfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/error.h"
#include "df11/outfile.h"

#define BLK ((uint64_t)DF11_OUT_BLOCK)

void df11_out_open(df11_out *o, int fd, const char *path, int direct)
{
	memset(o, 0, sizeof *o);
	o->fd = fd;
	o->path = path;
	if (direct) {
		int fl = fcntl(fd, F_GETFL);
		o->direct = fl >= 0 && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0;
	}
}

static df11_result pwrite_all(int fd, const uint8_t *p, size_t n,
			      uint64_t off, const char *path)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return df11_fail_errno(DF11_IO, errno, "%s", path);
		if (w == 0)
			return df11_fail(DF11_IO, "%s: nothing written", path);
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return DF11_OK;
}

/* Writes the held bytes of every part as they are (ordinary writes), and
 * forgets the parts. */
static df11_result parts_spill(df11_out *o)
{
	df11_result r = DF11_OK;
	for (size_t i = 0; i < o->nparts; i++) {
		df11_out_part *q = &o->part[i];
		for (uint64_t b = 0; b < BLK && !r;) {
			if (!(q->held[b / 8] >> (b % 8) & 1)) {
				b++;
				continue;
			}
			uint64_t e = b;
			while (e < BLK && (q->held[e / 8] >> (e % 8) & 1))
				e++;
			r = pwrite_all(o->fd, q->data + b, (size_t)(e - b),
				       q->block * BLK + b, o->path);
			b = e;
		}
		free(q->data);
	}
	o->nparts = 0;
	return r;
}

/* The file system refused a direct write: ordinary writes from now on. */
static df11_result fall_back(df11_out *o)
{
	int fl = fcntl(o->fd, F_GETFL);
	if (fl < 0 || fcntl(o->fd, F_SETFL, fl & ~O_DIRECT) < 0)
		return df11_fail_errno(DF11_IO, errno, "%s", o->path);
	o->direct = 0;
	return parts_spill(o);
}

/* Whole blocks from aligned memory at an aligned offset. */
static df11_result write_blocks(df11_out *o, const uint8_t *p, size_t n,
				uint64_t off)
{
	while (n && o->direct) {
		ssize_t w = pwrite(o->fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EINVAL) {
			df11_result r = fall_back(o);
			if (r)
				return r;
			break;
		}
		if (w < 0)
			return df11_fail_errno(DF11_IO, errno, "%s", o->path);
		if (w == 0)
			return df11_fail(DF11_IO, "%s: nothing written", o->path);
		/* Short direct writes end on a block boundary (or the disk
		 * is full, which the next call reports). */
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return n ? pwrite_all(o->fd, p, n, off, o->path) : DF11_OK;
}

static df11_result stage_get(df11_out *o)
{
	if (o->stage)
		return DF11_OK;
	void *p = mmap(NULL, DF11_OUT_STAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return df11_fail(DF11_NOMEM, "%s: write buffer", o->path);
	madvise(p, DF11_OUT_STAGE, MADV_HUGEPAGE);
	o->stage = p;
	return DF11_OK;
}

/* Bytes [off, off + n) of one block go into its part. */
static df11_result part_put(df11_out *o, const uint8_t *p, size_t n,
			    uint64_t off)
{
	if (!o->direct)
		return pwrite_all(o->fd, p, n, off, o->path);
	uint64_t blk = off / BLK, at = off % BLK;
	size_t i = 0;
	while (i < o->nparts && o->part[i].block != blk)
		i++;
	if (i == o->nparts) {
		if (o->nparts == o->cap) {
			size_t cap = o->cap ? 2 * o->cap : 8;
			df11_out_part *np = realloc(o->part, cap * sizeof *np);
			if (!np)
				return df11_fail(DF11_NOMEM, "%s", o->path);
			o->part = np;
			o->cap = cap;
		}
		df11_out_part *q = &o->part[i];
		memset(q, 0, sizeof *q);
		q->block = blk;
		if (posix_memalign((void **)&q->data, BLK, BLK))
			return df11_fail(DF11_NOMEM, "%s", o->path);
		memset(q->data, 0, BLK);
		o->nparts++;
	}
	df11_out_part *q = &o->part[i];
	memcpy(q->data + at, p, n);
	for (uint64_t b = at; b < at + n; b++)
		if (!(q->held[b / 8] >> (b % 8) & 1)) {
			q->held[b / 8] |= (uint8_t)(1u << (b % 8));
			q->filled++;
		}
	if (q->filled < BLK)
		return DF11_OK;
	/* Out of the list first: a fall-back inside writes the list. */
	uint8_t *data = q->data;
	*q = o->part[--o->nparts];
	df11_result r = write_blocks(o, data, BLK, blk * BLK);
	free(data);
	return r;
}

static int congruent(const uint8_t *p, uint64_t off)
{
	return (uintptr_t)p % BLK == off % BLK;
}

/* Writes the staged run: its whole blocks, and its last part. */
static df11_result stage_flush(df11_out *o)
{
	size_t whole = o->stage_len & ~(size_t)(BLK - 1);
	size_t rest = o->stage_len - whole;
	df11_result r = DF11_OK;
	o->stage_len = 0;
	if (whole)
		r = write_blocks(o, o->stage, whole, o->stage_off);
	if (!r && rest)
		r = part_put(o, o->stage + whole, rest, o->stage_off + whole);
	return r;
}

df11_result df11_out_pwrite(df11_out *o, const void *src, uint64_t len,
			    uint64_t off)
{
	const uint8_t *p = src;
	df11_result r;
	if (!len)
		return DF11_OK;
	if (off + len > o->end)
		o->end = off + len;
	/* A run that continues the staged one joins it: one large write
	 * instead of several small ones (a tensor's stream comes in one run
	 * per coding block). */
	int join = o->stage_len && off == o->stage_off + o->stage_len &&
		   !congruent(p, off);
	if (!join) {
		if (o->stage_len && (r = stage_flush(o)))
			return r;
		if (!o->direct)
			return pwrite_all(o->fd, p, (size_t)len, off, o->path);
		if (off % BLK) {
			uint64_t n = BLK - off % BLK < len ? BLK - off % BLK : len;
			if ((r = part_put(o, p, (size_t)n, off)))
				return r;
			p += n;
			off += n;
			len -= n;
		}
		if (len && congruent(p, off)) {
			/* Straight from the caller's memory. */
			uint64_t whole = len & ~(BLK - 1);
			if (whole && (r = write_blocks(o, p, (size_t)whole, off)))
				return r;
			return len > whole ? part_put(o, p + whole,
						      (size_t)(len - whole),
						      off + whole)
					   : DF11_OK;
		}
		if (len && (r = stage_get(o)))
			return r;
		o->stage_off = off;
	}
	while (len) {
		size_t n = DF11_OUT_STAGE - o->stage_len;
		if (n > len)
			n = (size_t)len;
		memcpy(o->stage + o->stage_len, p, n);
		o->stage_len += n;
		p += n;
		len -= n;
		if (o->stage_len == DF11_OUT_STAGE) {
			o->stage_len = 0;
			if ((r = write_blocks(o, o->stage, DF11_OUT_STAGE,
					      o->stage_off)))
				return r;
			o->stage_off += DF11_OUT_STAGE;
		}
	}
	return DF11_OK;
}

/* Read back through a mapping, from the page cache (ordinary writes). */
static df11_result hash_mapped(df11_out *o, uint64_t off, uint64_t len,
			       XXH3_state_t *st)
{
	const uint64_t piece = (uint64_t)32 << 20;
	long pg = sysconf(_SC_PAGESIZE);
	for (uint64_t at = 0; at < len;) {
		uint64_t n = len - at < piece ? len - at : piece;
		uint64_t a = (off + at) & ~(uint64_t)(pg - 1);
		size_t mlen = (size_t)(off + at + n - a);
		void *p = mmap(NULL, mlen, PROT_READ, MAP_SHARED, o->fd, (off_t)a);
		if (p == MAP_FAILED)
			return df11_fail_errno(DF11_IO, errno, "%s: mmap", o->path);
		madvise(p, mlen, MADV_SEQUENTIAL);
		XXH3_64bits_update(st, (const uint8_t *)p + (off + at - a),
				   (size_t)n);
		munmap(p, mlen);
		at += n;
	}
	return DF11_OK;
}

df11_result df11_out_hash(df11_out *o, uint64_t off, uint64_t len,
			  XXH3_state_t *st)
{
	df11_result r = o->stage_len ? stage_flush(o) : DF11_OK;
	if (r)
		return r;
	if (!o->direct)
		return hash_mapped(o, off, len, st);
	r = stage_get(o);
	uint64_t a = off & ~(BLK - 1), e = off + len;
	while (!r && a < e) {
		size_t n = e - a < DF11_OUT_STAGE ? (size_t)(e - a)
						  : DF11_OUT_STAGE;
		size_t rn = (n + BLK - 1) & ~(size_t)(BLK - 1);
		size_t got = 0;
		while (got < rn) {
			ssize_t g = pread(o->fd, o->stage + got, rn - got,
					  (off_t)(a + got));
			if (g < 0 && errno == EINTR)
				continue;
			if (g < 0)
				return df11_fail_errno(DF11_IO, errno, "%s",
						       o->path);
			if (g == 0)
				break;
			got += (size_t)g;
		}
		memset(o->stage + got, 0, rn - got); /* past the end so far */
		for (size_t i = 0; i < o->nparts; i++) {
			uint64_t bo = o->part[i].block * BLK;
			if (bo >= a && bo < a + rn)
				memcpy(o->stage + (bo - a), o->part[i].data, BLK);
		}
		uint64_t from = off > a ? off - a : 0;
		XXH3_64bits_update(st, o->stage + from, n - from);
		a += n;
	}
	return r;
}

df11_result df11_out_finish(df11_out *o)
{
	df11_result r = o->stage_len ? stage_flush(o) : DF11_OK;
	/* A part's missing bytes are zeros, as a hole reads. */
	while (o->nparts && !r) {
		df11_out_part q = o->part[--o->nparts];
		r = write_blocks(o, q.data, BLK, q.block * BLK);
		free(q.data);
	}
	/* The last block went out whole: back to the written length. */
	off_t size = r ? 0 : lseek(o->fd, 0, SEEK_END);
	if (!r && (size < 0 || ((uint64_t)size > o->end &&
				ftruncate(o->fd, (off_t)o->end) < 0)))
		r = df11_fail_errno(DF11_IO, errno, "%s", o->path);
	df11_out_drop(o);
	return r;
}

void df11_out_drop(df11_out *o)
{
	for (size_t i = 0; i < o->nparts; i++)
		free(o->part[i].data);
	free(o->part);
	o->part = NULL;
	o->nparts = o->cap = 0;
	if (o->stage)
		munmap(o->stage, DF11_OUT_STAGE);
	o->stage = NULL;
	o->stage_len = 0;
}
