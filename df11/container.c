/*
 * The container pipelines: pack (safetensors -> .df11), unpack (.df11 ->
 * the original bytes) and verify. Layout: df11/model_internal.h and
 * docs/FORMAT.md.
 *
 * Both directions stream: the main thread encodes (or decodes) one piece
 * at a time with all worker threads, while a writer thread hashes and
 * writes the previous one. Tensors above 16 MiB are encoded in pieces
 * (codec/encode_stream.h) and decoded in pieces, straight from the mapped
 * input, whose pages are dropped as they are consumed: peak memory stays
 * near a few pieces whatever the tensor and model sizes (docs/CODEC.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "df11.h"
#include "common/ahead.h"
#include "common/error.h"
#include "codec/encode_stream.h"
#include "codec/format.h"
#include "codec/parse.h"
#include "df11/dread.h"
#include "df11/fsutil.h"
#include "df11/model_internal.h"
#include "df11/outfile.h"
#include "df11/xxh.h"

#define QUEUE 16
/* Output buffers: pack keeps two encoded pieces (or two whole tensors of
 * at most a piece); unpack decodes in DECODE_CHUNK pieces, so four small
 * buffers keep the writer fed. */
#define PACK_BUFS 2
#define UNPACK_BUFS 4
#define MAXBUF 4
#define DECODE_CHUNK ((uint64_t)16 << 20) /* bytes of decoded output */

/* ---------------------------------------------------------- writer thread */

typedef struct wjob {
	int fd;
	const char *path;      /* for messages */
	const uint8_t *data;   /* bytes to write */
	uint64_t len;
	int align;             /* pad the file to DF11_CT_ALIGN first */
	const uint8_t *hsrc;   /* hash these bytes into *hsrc_out */
	uint64_t hsrc_len;
	uint64_t *hsrc_out;
	uint64_t *hdata_out;   /* hash of data */
	int check;             /* data must hash to expect */
	int cont, more;        /* the hash continues from the previous job /
				* into the next one (a tensor in pieces) */
	uint64_t expect;
	const char *what;      /* tensor or file name, for messages */
	const uint8_t *drop;   /* mapped input to release afterwards */
	uint64_t drop_len;
	int buf;               /* buffer to hand back, or -1 */
	int close_fd;          /* close fd afterwards (checking its size) */
	uint64_t final_size;
	const df11_es_seg *segs; /* positional runs, each at base + off */
	int nseg;
	uint64_t base;
	int hash_file;         /* hash file bytes [base, base + len) into
				* *hdata_out, then continue writing at their
				* end */
	int direct;            /* a new fd: write it with O_DIRECT */
} wjob;

typedef struct writer {
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	wjob q[QUEUE];
	int head, count, stop, started;
	int abort;             /* skip the queued jobs (the caller failed) */
	int buf_busy[MAXBUF];
	int nbuf;              /* buffers in use: PACK_BUFS or UNPACK_BUFS */
	uint64_t pos;          /* position in the current fd */
	df11_out out;          /* the current fd, if out_open */
	int out_open;
	XXH3_state_t *xxh;
	df11_result err;
	char msg[400];
} writer;

/* Mapped input bytes [p, p + len) leave RSS; the page cache keeps them.
 * The drop reaches back up to a huge page before p (not below lo, where
 * the mapping or the tensor starts): the page cache holds large folios
 * (up to 2 MiB), and a fault maps the folio it hits whole, so a fault
 * past a range already dropped brought back that range's last pages,
 * which nothing dropped again. Warm, a 24.5 GB checkpoint's decode kept
 * 200 MB of such pages mapped (peak RSS 300 MiB) until drops reached
 * back. */
static void drop_pages(const uint8_t *lo, const uint8_t *p, uint64_t len)
{
	const uint8_t *from = (uint64_t)(p - lo) > DF11_HUGE_PAGE ?
				      p - DF11_HUGE_PAGE : lo;
	/* Whole pages inside the range only: an edge page is shared with
	 * bytes still to be read. */
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)from + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
	uintptr_t e = ((uintptr_t)p + len) & ~((uintptr_t)pg - 1);
	if (e > a)
		madvise((void *)a, e - a, MADV_DONTNEED);
}

/* Hashes and writes in chunks small enough to stay in cache between the
 * two, so the bytes come from memory once. */
#define WRITE_CHUNK (2u << 20)

/* Starts reading a range from disk in the background, so that a
 * checkpoint that is not in the page cache streams while the previous
 * tensor is being encoded or decoded. */
static void prefetch(int fd, uint64_t off, uint64_t len)
{
	if (len)
		posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
}

/* Reads len bytes at off into dst and hashes them on the way, chunk by
 * chunk while they are in cache. pread, not the mapping: page faults on
 * gigabytes of mapped file cost more than the copy. */
static df11_result read_hashed(int fd, uint64_t off, uint8_t *dst,
			       uint64_t len, XXH3_state_t *st,
			       uint64_t *hash_ret, const char *path)
{
	XXH3_64bits_reset(st);
	for (uint64_t at = 0; at < len;) {
		size_t n = len - at < WRITE_CHUNK ? (size_t)(len - at) : WRITE_CHUNK;
		ssize_t got = pread(fd, dst + at, n, (off_t)(off + at));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return df11_fail_errno(DF11_IO, errno, "%s", path);
		if (got == 0)
			return df11_fail(DF11_IO, "%s: file shrank while read", path);
		XXH3_64bits_update(st, dst + at, (size_t)got);
		at += (uint64_t)got;
	}
	*hash_ret = XXH3_64bits_digest(st);
	return DF11_OK;
}

/* The writer's output file for job j (a new one at a new fd). */
static df11_out *writer_out(writer *w, const wjob *j)
{
	if (!w->out_open || w->out.fd != j->fd) {
		df11_out_drop(&w->out);
		df11_out_open(&w->out, j->fd, j->path, j->direct);
		w->out_open = 1;
	}
	return &w->out;
}

/* A tensor encoded in pieces: its runs go to their places with pwrite;
 * its last job hashes the payload back from the file (the runs do not
 * come in file order) and moves the write position past it. */
static df11_result run_positional(writer *w, const wjob *j)
{
	df11_result r;
	df11_out *o = writer_out(w, j);
	for (int i = 0; i < j->nseg; i++)
		if ((r = df11_out_pwrite(o, j->segs[i].p, j->segs[i].len,
					 j->base + j->segs[i].off)))
			return r;
	if (!j->hash_file)
		return DF11_OK;
	XXH3_64bits_reset(w->xxh);
	if ((r = df11_out_hash(o, j->base, j->len, w->xxh)))
		return r;
	*j->hdata_out = XXH3_64bits_digest(w->xxh);
	w->pos = j->base + j->len;
	return DF11_OK;
}

static df11_result run_job(writer *w, const wjob *j)
{
	static const uint8_t zeros[DF11_CT_ALIGN];
	df11_result r;
	/* A stored tensor's original and stored hashes are of the same
	 * bytes: one pass, as they are written. */
	int same = j->hsrc_out && j->hsrc == j->data && j->hsrc_len == j->len &&
		   j->hdata_out;
	if (j->hsrc_out && !same)
		*j->hsrc_out = df11_xxh3(j->hsrc, (size_t)j->hsrc_len);
	/* Input pages we no longer need leave our RSS before the (slow)
	 * write, so the next tensor's pages do not stack on top of them. */
	if (j->drop && j->drop != j->data)
		drop_pages(j->drop, j->drop, j->drop_len);
	if (j->segs || j->hash_file)
		return run_positional(w, j);
	df11_out *o = writer_out(w, j);
	if (j->align && w->pos % DF11_CT_ALIGN) {
		uint64_t pad = DF11_CT_ALIGN - w->pos % DF11_CT_ALIGN;
		if ((r = df11_out_pwrite(o, zeros, pad, w->pos)))
			return r;
		w->pos += pad;
	}
	int hash = j->hdata_out || j->check || j->more;
	if (hash && !j->cont)
		XXH3_64bits_reset(w->xxh);
	/* Ordinary writes copy the bytes into the page cache: hash and
	 * write a chunk at a time, while it is in cache. Direct writes do
	 * not read them with the CPU: one write, as large as it comes. */
	uint64_t chunk = o->direct ? j->len : WRITE_CHUNK;
	for (uint64_t at = 0; at < j->len;) {
		uint64_t n = j->len - at < chunk ? j->len - at : chunk;
		if (hash)
			XXH3_64bits_update(w->xxh, j->data + at, (size_t)n);
		if ((r = df11_out_pwrite(o, j->data + at, n, w->pos + at)))
			return r;
		/* Mapped input leaves RSS as it is written. */
		if (j->drop && j->drop == j->data)
			drop_pages(j->data, j->data + at, n);
		at += n;
	}
	w->pos += j->len;
	if (hash && !j->more) {
		uint64_t h = XXH3_64bits_digest(w->xxh);
		if (j->hdata_out)
			*j->hdata_out = h;
		if (same)
			*j->hsrc_out = h;
		/* Written to a temporary name that is removed on failure. */
		if (j->check && h != j->expect)
			return df11_fail(DF11_CHECKSUM, "%s: %s: decoded bytes differ "
					 "from the stored checksum", j->path,
					 j->what);
	}
	if (j->drop && j->drop == j->data)
		drop_pages(j->drop, j->drop, j->drop_len);
	if (j->close_fd && w->pos != j->final_size)
		return df11_fail(DF11_BAD_DATA, "%s: %llu bytes written, expected "
				 "%llu", j->path, (unsigned long long)w->pos,
				 (unsigned long long)j->final_size);
	return DF11_OK;
}

/* The last error's message without its "<df11_strerror(r)>: " prefix, to
 * be passed on with df11_fail(r, ...) (which adds it again). */
static const char *error_detail(df11_result r)
{
	const char *m = df11_last_error(), *p = df11_strerror(r);
	size_t k = strlen(p);
	return strncmp(m, p, k) == 0 && m[k] == ':' && m[k + 1] == ' ' ? m + k + 2
								     : m;
}

static void *writer_main(void *arg)
{
	writer *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->count && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->count)
			break;
		wjob j = w->q[w->head];
		pthread_mutex_unlock(&w->mu);
		df11_result r = DF11_OK;
		if (!w->err && !w->abort)
			r = run_job(w, &j);
		/* A file's last job owns its descriptor, error or not. */
		if (j.close_fd) {
			if (w->out_open && w->out.fd == j.fd && !r && !w->err &&
			    !w->abort)
				r = df11_out_finish(&w->out);
			df11_out_drop(&w->out);
			w->out_open = 0;
			if (close(j.fd) < 0 && !r)
				r = df11_fail_errno(DF11_IO, errno, "%s", j.path);
			w->pos = 0;
		}
		pthread_mutex_lock(&w->mu);
		if (r && !w->err) {
			w->err = r;
			snprintf(w->msg, sizeof w->msg, "%s", error_detail(r));
		}
		if (j.buf >= 0)
			w->buf_busy[j.buf] = 0;
		w->head = (w->head + 1) % QUEUE;
		w->count--;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static df11_result writer_start(writer *w, int nbuf)
{
	memset(w, 0, sizeof *w);
	w->nbuf = nbuf;
	if (!(w->xxh = XXH3_createState()))
		return df11_fail(DF11_NOMEM, "hash state");
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->tid, NULL, writer_main, w)) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		XXH3_freeState(w->xxh);
		return df11_fail(DF11_NOMEM, "cannot start the writer thread");
	}
	w->started = 1;
	return DF11_OK;
}

/* Queues a job, unless the writer has failed: then the job is not queued
 * (its buffer is released) and the writer's error comes back. */
static df11_result writer_push(writer *w, const wjob *j)
{
	pthread_mutex_lock(&w->mu);
	while (w->count == QUEUE && !w->err)
		pthread_cond_wait(&w->cv, &w->mu);
	df11_result r = w->err;
	if (!r) {
		w->q[(w->head + w->count) % QUEUE] = *j;
		w->count++;
		pthread_cond_broadcast(&w->cv);
	} else if (j->buf >= 0) {
		w->buf_busy[j->buf] = 0;
	}
	pthread_mutex_unlock(&w->mu);
	if (r)
		return df11_fail(r, "%s", w->msg);
	return DF11_OK;
}

static void writer_release(writer *w, int b)
{
	pthread_mutex_lock(&w->mu);
	w->buf_busy[b] = 0;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Waits for a free buffer. */
static int writer_buffer(writer *w)
{
	pthread_mutex_lock(&w->mu);
	for (;;) {
		for (int b = 0; b < w->nbuf; b++)
			if (!w->buf_busy[b]) {
				w->buf_busy[b] = 1;
				pthread_mutex_unlock(&w->mu);
				return b;
			}
		pthread_cond_wait(&w->cv, &w->mu);
	}
}

/* The caller failed: the queued jobs are dropped, and once this returns
 * the writer no longer touches any of their files or buffers. */
static void writer_abort(writer *w)
{
	pthread_mutex_lock(&w->mu);
	w->abort = 1;
	pthread_cond_broadcast(&w->cv);
	while (w->count)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

/* Drains the queue and stops the thread; returns its first error. */
static df11_result writer_finish(writer *w)
{
	if (!w->started)
		return DF11_OK;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->tid, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	XXH3_freeState(w->xxh);
	w->xxh = NULL;
	w->started = 0;
	if (w->err)
		return df11_fail(w->err, "%s", w->msg);
	return DF11_OK;
}

/* Output buffers shared with the writer, and slot IN, the main thread's
 * input buffer. Buffers of up to SMALL_BUF bytes lie side by side in one
 * mapping of huge pages, two to a page: zeroing a fresh 2 MiB page on
 * first touch is among the largest fixed costs of a small file. */
#define IN MAXBUF
#define SMALL_BUF ((size_t)1 << 20)
typedef struct buffers {
	uint8_t *p[MAXBUF + 1];
	size_t cap[MAXBUF + 1];
	uint8_t *small;        /* (MAXBUF + 1) slots of SMALL_BUF, or NULL */
} buffers;

#define SMALL_LEN \
	(((MAXBUF + 1) * SMALL_BUF + DF11_HUGE_PAGE - 1) & ~(DF11_HUGE_PAGE - 1))

static int in_small(const buffers *b, int i)
{
	return b->small && b->p[i] == b->small + (size_t)i * SMALL_BUF;
}

static df11_result buf_reserve(buffers *b, int i, size_t n)
{
	if (b->cap[i] >= n)
		return DF11_OK;
	if (n <= SMALL_BUF && !b->p[i] && !b->small)
		b->small = df11_huge_map(SMALL_LEN); /* else a mapping of its own */
	if (n <= SMALL_BUF && !b->p[i] && b->small) {
		b->p[i] = b->small + (size_t)i * SMALL_BUF;
		b->cap[i] = SMALL_BUF;
		return DF11_OK;
	}
	if (b->p[i] && !in_small(b, i))
		munmap(b->p[i], b->cap[i]);
	b->p[i] = NULL;
	b->cap[i] = 0;
	size_t len = (n + DF11_HUGE_PAGE - 1) & ~(DF11_HUGE_PAGE - 1);
	if (!len)
		len = DF11_HUGE_PAGE;
	uint8_t *p = df11_huge_map(len);
	if (!p)
		return df11_fail(DF11_NOMEM, "%zu-byte tensor buffer", n);
	b->p[i] = p;
	b->cap[i] = len;
	return DF11_OK;
}

static void buf_free(buffers *b)
{
	for (int i = 0; i <= MAXBUF; i++)
		if (b->p[i] && !in_small(b, i))
			munmap(b->p[i], b->cap[i]);
	if (b->small)
		munmap(b->small, SMALL_LEN);
}

static int cancelled(const df11_pack_options *o, uint64_t done, uint64_t total)
{
	return o->progress && o->progress(o->progress_ctx, done, total);
}

/* ------------------------------------------------------------ directory */

typedef struct dirbuf {
	uint8_t *p;
	size_t n, cap;
} dirbuf;

static uint8_t *dir_grow(dirbuf *d, size_t more)
{
	if (d->cap - d->n < more) {
		size_t cap = d->cap ? d->cap : 4096;
		while (cap - d->n < more)
			cap *= 2;
		uint8_t *p = realloc(d->p, cap);
		if (!p)
			return NULL;
		d->p = p;
		d->cap = cap;
	}
	uint8_t *at = d->p + d->n;
	memset(at, 0, more);
	d->n += more;
	return at;
}

/* Per-file and per-tensor results of a pack, filled in by the writer. */
typedef struct pack_file {
	uint64_t off, len, sum;
} pack_file;
typedef struct pack_tensor {
	int codec;
	uint64_t off, len, sum_orig, sum_stored;
} pack_tensor;

static df11_result build_directory(const df11_model *m, const pack_file *pf,
				   const pack_tensor *pt, dirbuf *d)
{
	for (size_t i = 0; i < m->nf; i++) {
		const df11_mfile *f = &m->f[i];
		size_t nl = strlen(f->name);
		uint8_t *p = dir_grow(d, DF11_CT_FILE_REC + nl);
		if (!p)
			return df11_fail(DF11_NOMEM, "directory");
		p[DF11_CT_FR_TYPE] = f->is_st ? 0 : 1;
		df11_wr32(p + DF11_CT_FR_NAME_LEN, (uint32_t)nl);
		df11_wr64(p + DF11_CT_FR_ORIG_SIZE, f->orig_size);
		df11_wr64(p + DF11_CT_FR_OFF, pf[i].off);
		df11_wr64(p + DF11_CT_FR_SIZE, pf[i].len);
		df11_wr64(p + DF11_CT_FR_SUM, pf[i].sum);
		df11_wr32(p + DF11_CT_FR_FIRST, f->is_st ? (uint32_t)f->first : 0);
		df11_wr32(p + DF11_CT_FR_COUNT, f->is_st ? (uint32_t)f->count : 0);
		memcpy(p + DF11_CT_FILE_REC, f->name, nl);
	}
	for (size_t i = 0; i < m->nt; i++) {
		const df11_mtensor *t = &m->t[i];
		size_t nl = strlen(t->name);
		size_t rec = DF11_CT_TR_SHAPE + 8u * (size_t)t->d.ndim;
		uint8_t *p = dir_grow(d, rec + nl);
		if (!p)
			return df11_fail(DF11_NOMEM, "directory");
		df11_wr32(p + DF11_CT_TR_FILE, (uint32_t)t->file);
		p[DF11_CT_TR_DTYPE] = (uint8_t)t->d.dtype;
		p[DF11_CT_TR_CODEC] = (uint8_t)pt[i].codec;
		p[DF11_CT_TR_NDIM] = (uint8_t)t->d.ndim;
		df11_wr32(p + DF11_CT_TR_NAME_LEN, (uint32_t)nl);
		df11_wr64(p + DF11_CT_TR_BEGIN, t->begin);
		df11_wr64(p + DF11_CT_TR_NBYTES, t->d.nbytes);
		df11_wr64(p + DF11_CT_TR_OFF, pt[i].off);
		df11_wr64(p + DF11_CT_TR_SIZE, pt[i].len);
		df11_wr64(p + DF11_CT_TR_SUM_ORIG, pt[i].sum_orig);
		df11_wr64(p + DF11_CT_TR_SUM_STORED, pt[i].sum_stored);
		for (int k = 0; k < t->d.ndim; k++)
			df11_wr64(p + DF11_CT_TR_SHAPE + 8 * k, t->d.shape[k]);
		memcpy(p + rec, t->name, nl);
	}
	return DF11_OK;
}

/* ----------------------------------------------------------------- pack */

/* Whether a tensor is worth encoding: BF16 with elements. */
static int encodable(const df11_mtensor *t)
{
	return t->d.dtype == DF11_DTYPE_BF16 && t->d.n_elems > 0;
}

/* ------------------------------------------------- direct piece reader */

/* A tensor of 64 MiB or more not in the page cache is read with O_DIRECT,
 * a piece ahead, by a reader thread into two reused buffers: the disk
 * streams at full speed while the previous piece is counted or coded, and
 * no page-cache page is made (on the build VM, filling the cache cost more
 * CPU time than the coding, and more wall time than the disk's second
 * read). A tensor in the cache, or a smaller one, is read from the
 * mapping: the second pass then finds it in the cache. Inputs of 1 GiB or
 * more are also written with O_DIRECT (df11/outfile.h); below that, the
 * ordinary writes and the payload's read-back from the page cache took
 * less time than direct writes and a read-back from the disk
 * (docs/CODEC.md). */
uint64_t df11_pack_direct_read_min = (uint64_t)64 << 20;
uint64_t df11_pack_direct_write_min = (uint64_t)1 << 30;
#define RD_BUFS 2
typedef struct preader {
	int fd;                /* O_DIRECT, or -1 */
	const char *path;
	uint64_t off, len;     /* the tensor's bytes in the file */
	uint64_t piece;        /* bytes per piece (whole blocks) */
	uint8_t *buf[RD_BUFS]; /* piece k in buf[k % RD_BUFS] */
	size_t cap;
	df11_ahead A;
	df11_result err;       /* of the failed read */
	char msg[300];
} preader;

/* Reads piece k (the thread's work); nonzero on failure. */
static int preader_read(void *ctx, size_t k)
{
	preader *R = ctx;
	uint64_t b = R->off + k * R->piece;
	uint64_t e = R->off + (k + 1) * R->piece < R->off + R->len ?
			     R->off + (k + 1) * R->piece : R->off + R->len;
	uint64_t a = b & ~(uint64_t)(DF11_OUT_BLOCK - 1);
	uint64_t z = (e + DF11_OUT_BLOCK - 1) & ~(uint64_t)(DF11_OUT_BLOCK - 1);
	uint8_t *dst = R->buf[k % RD_BUFS];
	for (uint64_t at = a; at < e;) {
		ssize_t g = pread(R->fd, dst + (at - a), (size_t)(z - at),
				  (off_t)at);
		if (g < 0 && errno == EINTR)
			continue;
		if (g <= 0) {
			df11_result r = g < 0 ? df11_fail_errno(DF11_IO, errno,
								"%s", R->path)
					      : df11_fail(DF11_IO, "%s: file "
							  "shrank while read",
							  R->path);
			R->err = r;
			snprintf(R->msg, sizeof R->msg, "%s", error_detail(r));
			return 1;
		}
		at += (uint64_t)g;
	}
	return 0;
}

/* Starts reading bytes [off, off + len) of the file, piece by piece, at
 * most RD_BUFS pieces ahead. */
static df11_result preader_start(preader *R, uint64_t off, uint64_t len,
				 uint64_t piece)
{
	size_t need = (size_t)piece + 2 * DF11_OUT_BLOCK;
	if (R->cap < need) {
		for (int i = 0; i < RD_BUFS; i++) {
			if (R->buf[i])
				munmap(R->buf[i], R->cap);
			R->buf[i] = NULL;
		}
		R->cap = 0;
		size_t cap = (need + DF11_HUGE_PAGE - 1) & ~(DF11_HUGE_PAGE - 1);
		for (int i = 0; i < RD_BUFS; i++) {
			if (!(R->buf[i] = df11_huge_map(cap)))
				return df11_fail(DF11_NOMEM, "read buffer");
			R->cap = cap;
		}
	}
	R->off = off;
	R->len = len;
	R->piece = piece;
	R->err = DF11_OK;
	return df11_ahead_start(&R->A, (size_t)((len + piece - 1) / piece),
				RD_BUFS, preader_read, R);
}

/* Piece k (in order), once read. */
static df11_result preader_get(preader *R, uint64_t k, const uint16_t **src)
{
	if (!df11_ahead_wait(&R->A, (size_t)k))
		return df11_fail(R->err ? R->err : DF11_IO, "%s", R->msg);
	uint64_t b = R->off + k * R->piece;
	*src = (const uint16_t *)(const void *)(R->buf[k % RD_BUFS] +
						  b % DF11_OUT_BLOCK);
	return DF11_OK;
}

static void preader_release(preader *R, uint64_t k)
{
	df11_ahead_release(&R->A, (size_t)k);
}

static void preader_stop(preader *R)
{
	df11_ahead_stop(&R->A);
}

static void preader_free(preader *R)
{
	preader_stop(R);
	for (int i = 0; i < RD_BUFS; i++) {
		if (R->buf[i])
			munmap(R->buf[i], R->cap);
		R->buf[i] = NULL;
	}
	R->cap = 0;
	if (R->fd >= 0)
		close(R->fd);
	R->fd = -1;
}

typedef struct pack_state {
	const df11_model *m;
	const df11_pack_options *opt;
	const char *tmp;
	int fd;
	int in_fd;            /* the safetensors file being packed */
	const char *in_path;
	preader rd;           /* direct reads of an uncached tensor */
	XXH3_state_t *xxh;
	writer w;
	buffers b;
	uint64_t pos; /* logical end of the output so far */
	pack_file *pf;
	pack_tensor *pt;
	df11_pack_stats st;
	df11_enc_stream *es;  /* tensors larger than a piece */
	df11_es_seg *segs[MAXBUF]; /* runs of the piece in buffer b */
	uint64_t done, total; /* progress */
} pack_state;

static df11_result pack_section(pack_state *s, const uint8_t *data,
				uint64_t len, uint64_t *off_ret,
				uint64_t *hsrc_out, const uint8_t *hsrc,
				uint64_t hsrc_len, uint64_t *hdata_out, int buf,
				const uint8_t *drop, uint64_t drop_len,
				const char *what)
{
	uint64_t off = df11_align_up(s->pos, DF11_CT_ALIGN);
	*off_ret = off;
	s->pos = off + len;
	wjob j = {.fd = s->fd, .path = s->tmp, .data = data, .len = len,
		  .align = 1, .hsrc = hsrc, .hsrc_len = hsrc_len,
		  .hsrc_out = hsrc_out, .hdata_out = hdata_out, .what = what,
		  .drop = drop, .drop_len = drop_len, .buf = buf};
	return writer_push(&s->w, &j);
}

/* Tensors above STREAM_MIN elements (16 MiB) are encoded in pieces of
 * max(4, threads) coding blocks (16 MiB of BF16 on up to four threads),
 * whatever their size: memory stays near two pieces' output plus one
 * piece of input. Smaller ones are encoded whole. */
#define STREAM_MIN (4 * DF11_ES_BLOCK)
static uint64_t piece_elems(const pack_state *s)
{
	int t = s->opt->threads < 4 ? 4 : s->opt->threads;
	return (uint64_t)t * DF11_ES_BLOCK;
}

/* Elements [first, first + cnt) of tensor t: straight from the input's
 * mapping when aligned (no copy), else read into the IN buffer. */
static df11_result piece_src(pack_state *s, const df11_mtensor *t,
			     uint64_t first, uint64_t cnt,
			     const uint16_t **src_ret)
{
	const uint8_t *p = t->stored + 2 * first;
	if (((uintptr_t)p & 1) == 0) {
		*src_ret = (const uint16_t *)(const void *)p;
		return DF11_OK;
	}
	const df11_mfile *f = &s->m->f[t->file];
	uint64_t off = (uint64_t)(p - f->map.p), len = 2 * cnt;
	df11_result r = buf_reserve(&s->b, IN, (size_t)(2 * piece_elems(s)));
	for (uint64_t at = 0; !r && at < len;) {
		ssize_t got = pread(s->in_fd, s->b.p[IN] + at, (size_t)(len - at),
				    (off_t)(off + at));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			r = got < 0 ? df11_fail_errno(DF11_IO, errno, "%s",
						      s->in_path)
				    : df11_fail(DF11_IO, "%s: file shrank while "
						"read", s->in_path);
		else
			at += (uint64_t)got;
	}
	*src_ret = (const uint16_t *)(const void *)s->b.p[IN];
	return r;
}

/* Done with a piece of the input's mapping (the page cache keeps it). */
static void piece_done(pack_state *s, const df11_mtensor *t, uint64_t first,
		       uint64_t cnt, uint64_t next_len)
{
	const df11_mfile *f = &s->m->f[t->file];
	uint64_t end = (uint64_t)(t->stored - f->map.p) + 2 * (first + cnt);
	drop_pages(f->map.p, t->stored + 2 * first, 2 * cnt);
	/* Cold input: the next piece streams in while this one is coded
	 * (not past the tensor: the next one may be read with O_DIRECT). */
	uint64_t left = 2 * (t->d.n_elems - first - cnt);
	prefetch(s->in_fd, end, next_len < left ? next_len : left);
}

/* Output buffer b with room for need bytes and a piece's runs. */
static df11_result piece_buffer(pack_state *s, int b, size_t need)
{
	if (!s->segs[b] &&
	    !(s->segs[b] = malloc(DF11_ES_MAX_SEGS(piece_elems(s)) *
				  sizeof *s->segs[b])))
		return df11_fail(DF11_NOMEM, "piece runs");
	return buf_reserve(&s->b, b, need);
}

static df11_result pack_progress(pack_state *s, uint64_t done)
{
	if (cancelled(s->opt, s->done + done, s->total))
		return df11_fail(DF11_CANCELLED, "interrupted");
	return DF11_OK;
}

/* One BF16 tensor in two passes over its pieces (codec/encode_stream.h):
 * count, plan, then code each piece and hand its runs to the writer,
 * which puts them in place and finally hashes the payload back. */
static df11_result pack_tensor_streamed(pack_state *s, size_t ti)
{
	const df11_mtensor *t = &s->m->t[ti];
	pack_tensor *p = &s->pt[ti];
	uint64_t n = t->d.n_elems, piece = piece_elems(s);
	df11_result r;
	if (!s->es && !(s->es = df11_enc_stream_new(s->opt->threads)))
		return df11_fail(DF11_NOMEM, "encoder state");
	df11_encode_options eo = {.threads = s->opt->threads};
	if ((r = df11_enc_stream_begin(s->es, n, &eo)))
		return df11_fail(r, "%s: %s", t->name, df11_last_error());
	uint64_t t_off = (uint64_t)(t->stored - s->m->f[t->file].map.p);
	int direct = s->in_path && s->in_fd >= 0 && !(t_off & 1) &&
		     t->d.nbytes >= df11_pack_direct_read_min &&
		     df11_mostly_uncached(t->stored, t->d.nbytes);
	if (direct && s->rd.fd < 0)
		s->rd.fd = open(s->in_path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	direct = direct && s->rd.fd >= 0;
	s->rd.path = s->in_path;
	if (direct && (r = preader_start(&s->rd, t_off, t->d.nbytes, 2 * piece)))
		return r;
	if (!direct) /* read once front to back: larger readahead */
		df11_advise(t->stored, t->d.nbytes, MADV_SEQUENTIAL);
	XXH3_64bits_reset(s->xxh);
	for (uint64_t f = 0, k = 0; f < n && !r; f += piece, k++) {
		uint64_t c = n - f < piece ? n - f : piece;
		const uint16_t *src = NULL;
		if ((r = direct ? preader_get(&s->rd, k, &src)
				: piece_src(s, t, f, c, &src)))
			break;
		XXH3_64bits_update(s->xxh, src, 2 * (size_t)c);
		r = df11_enc_stream_count(s->es, src, f, c);
		if (direct)
			preader_release(&s->rd, k);
		else
			piece_done(s, t, f, c, f + c < n ? 2 * piece : 0);
		if (!r)
			r = pack_progress(s, f + c);
	}
	preader_stop(&s->rd);
	df11_layout L;
	if (r || (r = df11_enc_stream_plan(s->es, &L)))
		return df11_fail(r, "%s: %s", t->name, df11_last_error());
	p->sum_orig = XXH3_64bits_digest(s->xxh);
	p->codec = 1;
	p->len = L.total_size;
	p->off = df11_align_up(s->pos, DF11_CT_ALIGN);
	s->pos = p->off + L.total_size;
	/* Pass 2 reads the tensor from the start again. */
	if (direct && (r = preader_start(&s->rd, t_off, t->d.nbytes, 2 * piece)))
		return r;
	if (!direct)
		prefetch(s->in_fd, t_off, 2 * piece);
	wjob pad = {.fd = s->fd, .path = s->tmp, .align = 1, .buf = -1};
	if ((r = writer_push(&s->w, &pad)))
		return r;
	for (uint64_t f = 0, k = 0; f < n; f += piece, k++) {
		uint64_t c = n - f < piece ? n - f : piece;
		const uint16_t *src = NULL;
		if ((r = direct ? preader_get(&s->rd, k, &src)
				: piece_src(s, t, f, c, &src)))
			return r;
		int b = writer_buffer(&s->w);
		int nseg = 0;
		r = piece_buffer(s, b, df11_enc_stream_need(s->es, f, c));
		if (!r && (r = df11_enc_stream_code(s->es, src, f, c, s->b.p[b],
						    s->b.cap[b], s->segs[b],
						    &nseg)))
			r = df11_fail(r, "%s: %s", t->name, df11_last_error());
		if (direct)
			preader_release(&s->rd, k);
		else
			piece_done(s, t, f, c, f + c < n ? 2 * piece : 0);
		if (r) {
			writer_release(&s->w, b);
			return r;
		}
		wjob j = {.fd = s->fd, .path = s->tmp, .segs = s->segs[b],
			  .nseg = nseg, .base = p->off, .buf = b};
		if ((r = writer_push(&s->w, &j)) || (r = pack_progress(s, n + f + c)))
			return r;
	}
	preader_stop(&s->rd);
	/* The rest (header, table, index, padding), copied into a buffer the
	 * writer owns, then the hash of the whole payload. */
	df11_es_seg fin[8];
	int nfin = 0;
	if ((r = df11_enc_stream_finish(s->es, fin, &nfin)))
		return df11_fail(r, "%s: %s", t->name, df11_last_error());
	size_t need = 0;
	for (int i = 0; i < nfin; i++)
		need += fin[i].len;
	int b = writer_buffer(&s->w);
	if ((r = piece_buffer(s, b, need))) {
		writer_release(&s->w, b);
		return r;
	}
	uint8_t *q = s->b.p[b];
	for (int i = 0; i < nfin; i++) {
		memcpy(q, fin[i].p, fin[i].len);
		s->segs[b][i] = (df11_es_seg){fin[i].off, q, fin[i].len};
		q += fin[i].len;
	}
	s->st.n_compressed++;
	s->st.bf16_elems += n;
	s->st.bf16_stored += L.total_size;
	wjob j = {.fd = s->fd, .path = s->tmp, .segs = s->segs[b],
		  .nseg = nfin, .base = p->off, .buf = b, .hash_file = 1,
		  .len = L.total_size, .hdata_out = &p->sum_stored,
		  .what = t->name};
	return writer_push(&s->w, &j);
}

static df11_result pack_tensor_one(pack_state *s, size_t ti)
{
	const df11_mtensor *t = &s->m->t[ti];
	pack_tensor *p = &s->pt[ti];
	df11_result r;
	if (!encodable(t)) {
		p->codec = 0;
		p->len = t->d.nbytes;
		return pack_section(s, t->stored, t->d.nbytes, &p->off,
				    &p->sum_orig, t->stored, t->d.nbytes,
				    &p->sum_stored, -1, t->stored, t->d.nbytes,
				    t->name);
	}
	uint64_t n = t->d.n_elems;
	if (n > STREAM_MIN)
		return pack_tensor_streamed(s, ti);
	const df11_mfile *f = &s->m->f[t->file];
	if (s->m->kind == DF11_KIND_DFLOAT11) {
		/* A DFloat11 folder: its BF16 tensors are decoded. */
		if ((r = buf_reserve(&s->b, IN, (size_t)t->d.nbytes)) ||
		    (r = df11_mtensor_read((df11_model *)s->m, ti, s->b.p[IN],
					   t->d.nbytes, 1)))
			return r;
		p->sum_orig = df11_xxh3(s->b.p[IN], (size_t)t->d.nbytes);
	} else if ((r = buf_reserve(&s->b, IN, (size_t)t->d.nbytes)) ||
	    (r = read_hashed(s->in_fd, (uint64_t)(t->stored - f->map.p),
			     s->b.p[IN], t->d.nbytes, s->xxh, &p->sum_orig,
			     s->in_path)))
		return r;
	const uint16_t *src = (const uint16_t *)(const void *)s->b.p[IN];
	int b = writer_buffer(&s->w);
	size_t bound = df11_encode_bound(n);
	if ((r = buf_reserve(&s->b, b, bound))) {
		writer_release(&s->w, b);
		return r;
	}
	uint8_t *dst = s->b.p[b];
	df11_encode_options eo = {.threads = s->opt->threads};
	size_t size;
	r = df11_encode(src, n, &eo, dst, bound, &size);
	if (r) {
		writer_release(&s->w, b);
		return df11_fail(r, "%s: %s", t->name, df11_last_error());
	}
	p->codec = 1;
	p->len = size;
	s->st.n_compressed++;
	s->st.bf16_elems += n;
	s->st.bf16_stored += size;
	return pack_section(s, dst, size, &p->off, NULL, NULL, 0,
			    &p->sum_stored, b, NULL, 0, t->name);
}

static df11_result pack_body(pack_state *s)
{
	const df11_model *m = s->m;
	df11_result r;
	uint8_t hdr[DF11_CT_HEADER_SIZE] = {0};
	memcpy(hdr + DF11_CT_HDR_MAGIC, DF11_CT_MAGIC, 8);
	df11_wr16(hdr + DF11_CT_HDR_MAJOR, DF11_CT_VERSION_MAJOR);
	df11_wr16(hdr + DF11_CT_HDR_MINOR, DF11_CT_VERSION_MINOR);
	df11_wr32(hdr + DF11_CT_HDR_SOURCE, m->kind != DF11_KIND_SAFETENSORS
						? DF11_SRC_FOLDER : DF11_SRC_FILE);
	df11_wr64(hdr + DF11_CT_HDR_SUM, df11_xxh3(hdr, DF11_CT_SUMMED));
	uint64_t total = 0, done = 0;
	for (size_t i = 0; i < m->nf; i++)
		total += m->f[i].orig_size;
	/* The first job opens the output: direct writes for a large one. */
	wjob j = {.fd = s->fd, .path = s->tmp, .data = hdr, .len = sizeof hdr,
		  .buf = -1, .direct = total >= df11_pack_direct_write_min};
	s->pos = sizeof hdr;
	if ((r = writer_push(&s->w, &j)))
		return r;
	/* hdr lives on this stack frame until writer_finish below. */
	for (size_t i = 0; i < m->nf && !r; i++) {
		const df11_mfile *f = &m->f[i];
		pack_file *pf = &s->pf[i];
		pf->len = f->sect_size;
		r = pack_section(s, f->sect, f->sect_size, &pf->off, NULL, NULL,
				 0, &pf->sum, -1, NULL, 0, f->name);
		done += f->sect_size;
		char *path = NULL;
		if (f->is_st && f->count && m->kind != DF11_KIND_DFLOAT11) {
			path = m->kind == DF11_KIND_FOLDER ?
				       df11_join_path(m->path, f->name) :
				       strdup(m->path);
			if (!path) {
				r = df11_fail(DF11_NOMEM, "%s", f->name);
				break;
			}
			s->in_path = path;
			s->in_fd = open(path, O_RDONLY | O_CLOEXEC);
			if (s->in_fd < 0) {
				r = df11_fail_errno(DF11_IO, errno, "%s", path);
				free(path);
				break;
			}
			posix_fadvise(s->in_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		}
		for (size_t k = f->first; f->is_st && k < f->first + f->count &&
		     !r; k++) {
			/* The next tensor streams in while this one is coded,
			 * unless it is coded in pieces: then it reads itself,
			 * from the page cache or (not there) with O_DIRECT. */
			if (k + 1 < f->first + f->count && s->in_fd >= 0 &&
			    !(encodable(&m->t[k + 1]) &&
			      m->t[k + 1].d.n_elems > STREAM_MIN))
				prefetch(s->in_fd,
					 (uint64_t)(m->t[k + 1].stored - f->map.p),
					 m->t[k + 1].d.nbytes);
			s->done = done;
			s->total = total;
			r = pack_tensor_one(s, k);
			done += m->t[k].d.nbytes;
			if (!r && cancelled(s->opt, done, total))
				r = df11_fail(DF11_CANCELLED, "interrupted");
		}
		if (path) {
			preader_free(&s->rd);
			close(s->in_fd);
			s->in_fd = -1;
			s->in_path = NULL;
			free(path);
		}
		if (!r && cancelled(s->opt, done, total))
			r = df11_fail(DF11_CANCELLED, "interrupted");
	}
	df11_result wr = writer_finish(&s->w);
	if (r)
		return r;
	if (wr)
		return wr;
	/* The directory and trailer need the writer's hashes. */
	dirbuf d = {0};
	if ((r = build_directory(m, s->pf, s->pt, &d))) {
		free(d.p);
		return r;
	}
	/* The writer's thread is done; its file is still open. */
	df11_out *o = &s->w.out;
	if (!s->w.out_open) {
		df11_out_open(o, s->fd, s->tmp, 0);
		s->w.out_open = 1;
	}
	uint64_t dir_off = df11_align_up(s->pos, DF11_CT_ALIGN);
	static const uint8_t zeros[DF11_CT_ALIGN];
	if (dir_off > s->pos)
		r = df11_out_pwrite(o, zeros, dir_off - s->pos, s->pos);
	if (!r)
		r = df11_out_pwrite(o, d.p, d.n, dir_off);
	uint8_t tr[DF11_CT_TRAILER_SIZE] = {0};
	memcpy(tr + DF11_CT_TRL_MAGIC, DF11_CT_TRAILER_MAGIC, 8);
	df11_wr64(tr + DF11_CT_TRL_DIR_OFF, dir_off);
	df11_wr64(tr + DF11_CT_TRL_DIR_SIZE, d.n);
	df11_wr64(tr + DF11_CT_TRL_DIR_SUM, df11_xxh3(d.p, d.n));
	df11_wr64(tr + DF11_CT_TRL_N_FILES, m->nf);
	df11_wr64(tr + DF11_CT_TRL_N_TENSORS, m->nt);
	df11_wr64(tr + DF11_CT_TRL_SUM, df11_xxh3(tr, DF11_CT_SUMMED));
	if (!r)
		r = df11_out_pwrite(o, tr, sizeof tr, dir_off + d.n);
	if (!r)
		r = df11_out_finish(o);
	s->st.container_bytes = dir_off + d.n + sizeof tr;
	free(d.p);
	return r;
}

df11_result df11_pack(const char *input, const char *output,
		      const df11_pack_options *opt_in,
		      df11_pack_stats *stats_ret)
{
	static const df11_pack_options defaults = {0};
	const df11_pack_options *opt = opt_in ? opt_in : &defaults;
	if (!input || !output)
		return df11_fail(DF11_INVALID_ARG, "pack: NULL path");
	df11_result r = df11_check_reserved(opt->reserved, 8, "pack options");
	if (!r)
		r = df11_check_output(output, opt->force);
	if (r)
		return r;
	df11_model *m;
	if ((r = df11_model_open(input, &m)))
		return r;
	if (m->kind == DF11_KIND_CONTAINER) {
		df11_model_close(m);
		return df11_fail(DF11_INVALID_ARG, "%s is already a .df11 "
				 "container", input);
	}
	if (m->nt > DF11_CT_MAX_TENSORS || m->nf > DF11_CT_MAX_FILES) {
		df11_model_close(m);
		return df11_fail(DF11_LIMIT, "%s: too many tensors or files",
				 input);
	}
	pack_state s = {.m = m, .opt = opt, .fd = -1, .in_fd = -1,
			.rd = {.fd = -1}};
	s.pf = calloc(m->nf + 1, sizeof *s.pf);
	s.pt = calloc(m->nt + 1, sizeof *s.pt);
	char *tmp = df11_temp_name(output);
	if (!s.pf || !s.pt || !tmp) {
		r = df11_fail(DF11_NOMEM, "pack");
		goto out;
	}
	s.tmp = tmp;
	if (!(s.xxh = XXH3_createState())) {
		r = df11_fail(DF11_NOMEM, "hash state");
		goto out;
	}
	s.fd = mkostemp(tmp, O_CLOEXEC);
	if (s.fd < 0) {
		r = df11_fail_errno(DF11_IO, errno, "%s", output);
		goto out;
	}
	fchmod(s.fd, 0644);
	if ((r = writer_start(&s.w, PACK_BUFS)))
		goto out;
	r = pack_body(&s);
	writer_finish(&s.w);
	if (!r && close(s.fd) < 0)
		r = df11_fail_errno(DF11_IO, errno, "%s", tmp);
	else if (r)
		close(s.fd);
	s.fd = -1;
	if (!r)
		r = df11_commit_output(tmp, output);
	if (!r) {
		s.st.n_files = m->nf;
		s.st.n_tensors = m->nt;
		for (size_t i = 0; i < m->nf; i++)
			s.st.orig_bytes += m->f[i].orig_size;
		s.st.bytes_in = s.st.orig_bytes;
		s.st.bytes_out = s.st.container_bytes;
		if (stats_ret)
			*stats_ret = s.st;
	}
out:
	preader_free(&s.rd);
	df11_out_drop(&s.w.out);
	if (s.fd >= 0)
		close(s.fd);
	if (r && tmp && s.tmp)
		unlink(tmp);
	buf_free(&s.b);
	XXH3_freeState(s.xxh);
	df11_enc_stream_free(s.es);
	for (int b = 0; b < MAXBUF; b++)
		free(s.segs[b]);
	free(tmp);
	free(s.pf);
	free(s.pt);
	df11_model_close(m);
	return r;
}

/* --------------------------------------------------------------- unpack */

/* Creates the folders above rel inside root. */
static df11_result make_parents(const char *root, const char *rel)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/%s", root, rel);
	if (n < 0 || (size_t)n >= sizeof path)
		return df11_fail(DF11_LIMIT, "%s/%s: path too long", root, rel);
	for (char *p = path + strlen(root) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return df11_fail_errno(DF11_IO, errno, "%s", path);
		*p = '/';
	}
	return DF11_OK;
}

/* Every payload is checked against its hash before the output is
 * committed. One of up to df11_unpack_hash_map_max bytes in the mapping
 * is hashed by the decoding thread, a piece at a time right after the
 * piece is decoded, while its bytes are in cache: a thread hashing it
 * from the mapping cost a millisecond more of CPU for 11 MB. A larger one
 * is checked on a thread of its own, through pread into a small buffer,
 * so that the hash's pages do not add to RSS and a cold container's
 * reading overlaps decoding and writing. (A payload the direct reader
 * holds was hashed as it arrived.) */
#define VERIFY_CHUNK ((size_t)2 << 20)
uint64_t df11_unpack_hash_map_max = (uint64_t)32 << 20;
uint64_t df11_unpack_direct_max = (uint64_t)16 << 20;
uint64_t df11_unpack_direct_payloads;
static int hashed_from_map(const df11_mtensor *t)
{
	return t->d.stored_bytes <= df11_unpack_hash_map_max;
}
typedef struct pverify {
	pthread_t tid;
	int running;
	int fd;
	uint64_t off, len, expect;
	uint8_t *buf;          /* cap bytes: up to VERIFY_CHUNK */
	size_t cap;
	XXH3_state_t *st;
	int ok;
	int err;               /* errno of a failed read, or 0 */
} pverify;

static void *pverify_main(void *arg)
{
	pverify *v = arg;
	XXH3_64bits_reset(v->st);
	for (uint64_t at = 0; at < v->len;) {
		size_t n = v->len - at < v->cap ? (size_t)(v->len - at) : v->cap;
		ssize_t g = pread(v->fd, v->buf, n, (off_t)(v->off + at));
		if (g < 0 && errno == EINTR)
			continue;
		if (g <= 0) {
			v->err = g < 0 ? errno : EIO;
			return NULL;
		}
		XXH3_64bits_update(v->st, v->buf, (size_t)g);
		at += (uint64_t)g;
	}
	v->ok = XXH3_64bits_digest(v->st) == v->expect;
	return NULL;
}

typedef struct unpack_state {
	df11_model *m;
	const df11_pack_options *opt;
	int in_fd;            /* the container */
	XXH3_state_t *xxh;
	df11_decoder *dec;
	writer w;
	buffers b;
	pverify pv;
	df11_dread *dr;       /* direct reads of cold payloads, or NULL */
	df11_dread_item *items; /* of the tensors direct_candidate takes */
	size_t next_item;
	df11_pack_stats st;
} unpack_state;

/* Payloads the direct reader takes, in the order unpack meets them: the
 * first tensor of each file, which no tensor before it requested ahead
 * (each later one is, into the page cache, while the one before it is
 * decoded), if small enough to be held whole in the reader's buffer
 * (which the largest sizes). Larger ones are decoded in pieces straight
 * from the mapping, their pages dropped behind. */
static int direct_candidate(const df11_mtensor *t, size_t k_in_file)
{
	return k_in_file == 0 && t->d.compressed && t->d.stored_bytes &&
	       t->d.stored_bytes <= df11_unpack_direct_max;
}

static df11_result stored_differs(const df11_model *m, const df11_mtensor *t)
{
	return df11_fail(DF11_CHECKSUM, "%s: tensor %s: stored bytes differ "
			 "from their checksum", m->path, t->name);
}

/* A tensor failed to parse or decode: a payload that differs from its
 * checksum is the reason given, if it does. */
static df11_result decode_failed(const df11_model *m, const df11_mtensor *t,
				 df11_result r)
{
	if (r != DF11_NOMEM &&
	    df11_xxh3(t->stored, (size_t)t->d.stored_bytes) != t->sum_stored)
		return stored_differs(m, t);
	return df11_fail(r, "%s: tensor %s: %s", m->path, t->name,
			 df11_last_error());
}

/* Whether a tensor's stored bytes match their checksum: hashed from the
 * mapping in DECODE_CHUNK pieces, whose pages leave RSS as they pass (the
 * page cache keeps them for the decoder). */
static int payload_intact(XXH3_state_t *st, const df11_mtensor *t)
{
	XXH3_64bits_reset(st);
	for (uint64_t at = 0; at < t->d.stored_bytes; at += DECODE_CHUNK) {
		uint64_t n = t->d.stored_bytes - at < DECODE_CHUNK
				     ? t->d.stored_bytes - at : DECODE_CHUNK;
		XXH3_64bits_update(st, t->stored + at, (size_t)n);
		drop_pages(t->stored, t->stored + at, n);
	}
	return XXH3_64bits_digest(st) == t->sum_stored;
}

/* A mapped payload decoded in pieces: where its sign|mantissa bytes lie
 * (one per element, or the raw words), and how much of its stream has
 * been released. */
typedef struct piece_pages {
	uint64_t sm_off, sm_width, bits_log2;
	uint64_t dropped; /* stream bytes already released */
} piece_pages;

static piece_pages piece_pages_of(const df11_parsed *P)
{
	const df11_layout *L = &P->layout;
	int raw = L->codec == DF11_CODEC_RAW;
	return (piece_pages){raw ? DF11_HEADER_SIZE : L->off_sm, raw ? 2 : 1,
			     L->window_log2 + L->block_log2, 0};
}

/* Elements [first, first + cnt) of t are decoded: their sign|mantissa
 * pages, and the stream pages before the block the next piece starts
 * in, leave RSS. */
static void drop_decoded(piece_pages *g, const df11_mtensor *t,
			 const df11_parsed *P, uint64_t first, uint64_t cnt)
{
	drop_pages(t->stored, t->stored + g->sm_off + g->sm_width * first,
		   g->sm_width * cnt);
	if (P->layout.codec == DF11_CODEC_HUFFMAN && first + cnt < t->d.n_elems) {
		uint64_t upto = (df11_block_of(P, first + cnt) << g->bits_log2) / 8;
		drop_pages(t->stored, P->stream + g->dropped, upto - g->dropped);
		g->dropped = upto;
	}
}

/* Starts checking t's payload on a thread; 0 if that cannot be done (the
 * caller checks it itself). */
static int pverify_start(unpack_state *s, const df11_mtensor *t)
{
	pverify *v = &s->pv;
	/* No larger than the payload: small containers stay small. */
	size_t want = t->d.stored_bytes < VERIFY_CHUNK ?
			      (size_t)t->d.stored_bytes : VERIFY_CHUNK;
	if (v->cap < want) {
		free(v->buf);
		v->cap = 0;
		if (!(v->buf = malloc(want)))
			return 0;
		v->cap = want;
	}
	if (!t->d.stored_bytes || (!v->st && !(v->st = XXH3_createState())))
		return 0;
	v->fd = s->in_fd;
	v->off = (uint64_t)(t->stored - s->m->cmap.p);
	v->len = t->d.stored_bytes;
	v->expect = t->sum_stored;
	v->ok = 0;
	v->err = 0;
	if (pthread_create(&v->tid, NULL, pverify_main, v))
		return 0;
	v->running = 1;
	return 1;
}

/* Waits for the check of t's payload. */
static df11_result pverify_finish(unpack_state *s, const df11_mtensor *t)
{
	pverify *v = &s->pv;
	if (!v->running)
		return DF11_OK;
	pthread_join(v->tid, NULL);
	v->running = 0;
	if (v->err)
		return df11_fail_errno(DF11_IO, v->err, "%s", s->m->path);
	if (!v->ok)
		return stored_differs(s->m, t);
	return DF11_OK;
}

/* Decodes a tensor straight from the container's mapping in DECODE_CHUNK
 * pieces, each handed to the writer as it is done; the writer's hash runs
 * across the pieces and is checked against the original's at the last
 * one, before anything is committed. The payload is parsed once, and its
 * pages leave RSS as the pieces pass (the page cache keeps them). mapped:
 * t->stored is the container's mapping (else the direct reader's memory);
 * hash: check the payload's hash here, as the pieces pass; tj: the job
 * for the whole tensor, t_pos: its offset in the output file. */
static df11_result unpack_pieces(unpack_state *s, const df11_mtensor *t,
				 int mapped, int hash, const wjob *tj,
				 uint64_t t_pos, uint64_t done, uint64_t total)
{
	df11_parsed P;
	df11_result r = df11_parse(t->stored, (size_t)t->d.stored_bytes, &P);
	if (r)
		return decode_failed(s->m, t, r);
	/* A tensor below 64 MiB in sixteen pieces of at least 1 MiB: the
	 * writer's work overlaps the decoding even then, and the four
	 * buffers stay small (first touches of fresh pages cost more than
	 * the extra calls). */
	uint64_t pbytes = DECODE_CHUNK;
	if (t->d.nbytes < 4 * DECODE_CHUNK) {
		uint64_t mib = (uint64_t)1 << 20;
		pbytes = (t->d.nbytes / 16 + mib - 1) & ~(mib - 1);
		if (pbytes < mib)
			pbytes = mib;
	}
	uint64_t n = t->d.n_elems, per = pbytes / 2;
	if (mapped)
		df11_advise(t->stored, t->d.stored_bytes, MADV_SEQUENTIAL);
	piece_pages g = piece_pages_of(&P);
	/* A payload in memory (read by the direct reader) is not the
	 * mapping's to drop. One hashed here stays mapped until the tensor
	 * is done (unpack_file releases it): it is small, and releasing its
	 * pages piece by piece (a TLB shootdown on every thread's core each
	 * time) cost more than it saved. */
	int keep = !mapped || hash;
	uint64_t hashed = 0; /* payload bytes hashed */
	if (hash)
		XXH3_64bits_reset(s->xxh);
	for (uint64_t first = 0, cnt; first < n; first += cnt) {
		/* Each piece lies in its buffer as in the file relative to a
		 * block boundary, so that direct writes go from the buffer
		 * without a copy (df11/outfile.h): it starts `shift` bytes
		 * into its buffer and is at most that much shorter. Not if
		 * the words would lose their alignment. */
		size_t shift = (size_t)((t_pos + 2 * first) % DF11_OUT_BLOCK);
		if (shift & 1)
			shift = 0;
		/* Cut where the decoder wastes nothing (codec/parse.h). */
		cnt = df11_decode_piece_end(&P, first, per - shift / 2) - first;
		int b = writer_buffer(&s->w);
		r = buf_reserve(&s->b, b, (size_t)(2 * cnt) + shift);
		uint8_t *dst = s->b.p[b] + shift;
		if (!r)
			r = df11_decode_parsed(s->dec, &P, first, cnt,
					       (uint16_t *)(void *)dst);
		if (r) {
			writer_release(&s->w, b);
			return r == DF11_NOMEM ? r : decode_failed(s->m, t, r);
		}
		if (!keep)
			drop_decoded(&g, t, &P, first, cnt);
		wjob j = *tj;
		int last = first + cnt == n;
		j.data = dst;
		j.len = 2 * cnt;
		j.buf = b;
		j.cont = first > 0;
		j.more = !last;
		j.check = last;
		j.close_fd = tj->close_fd && last;
		if ((r = writer_push(&s->w, &j)))
			return r;
		/* Payload bytes in file order up to the end of this piece's
		 * sign|mantissa bytes (which the decoder has just read), the
		 * rest (the stream) after the last piece. */
		if (hash) {
			uint64_t to = last ? t->d.stored_bytes
					   : g.sm_off + g.sm_width * (first + cnt);
			XXH3_64bits_update(s->xxh, t->stored + hashed,
					   (size_t)(to - hashed));
			hashed = to;
			if (last && XXH3_64bits_digest(s->xxh) != t->sum_stored)
				return stored_differs(s->m, t);
		}
		if (!last && cancelled(s->opt, done + 2 * (first + cnt), total))
			return df11_fail(DF11_CANCELLED, "interrupted");
	}
	return DF11_OK;
}

static df11_result unpack_file(unpack_state *s, size_t fi, const char *path,
			       uint64_t *done, uint64_t total)
{
	df11_model *m = s->m;
	const df11_mfile *f = &m->f[fi];
	/* Not O_TRUNC: ext4 takes a truncation to zero for a file about to
	 * be replaced and starts writing it back on close (auto_da_alloc),
	 * which cost more than the decoding. The file is new and empty
	 * unless a name repeats. */
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return df11_fail_errno(DF11_IO, errno, "%s", path);
	struct stat fst;
	if (fstat(fd, &fst) < 0 || (fst.st_size && ftruncate(fd, 0) < 0)) {
		int e = errno;
		close(fd);
		return df11_fail_errno(DF11_IO, e, "%s", path);
	}
	if (f->orig_size < DF11_OUT_DIRECT_MIN)
		df11_reserve_blocks(fd, f->orig_size);
	/* Header bytes and carried files were checked at open or are checked
	 * by the writer as they are written. */
	int last = !f->is_st || f->count == 0;
	wjob j = {.fd = fd, .path = path, .data = f->sect, .len = f->sect_size,
		  .check = 1, .expect = f->sect_sum, .what = f->name, .buf = -1,
		  .close_fd = last, .final_size = f->orig_size,
		  .direct = f->orig_size >= DF11_OUT_DIRECT_MIN};
	df11_result r = writer_push(&s->w, &j);
	int fd_queued = !r && last;
	*done += f->sect_size;
	uint64_t pos = f->sect_size; /* of the next tensor in the file */
	for (size_t k = 0; f->is_st && k < f->count && !r; k++) {
		const df11_mtensor *t = &m->t[f->first + k];
		uint64_t t_pos = pos;
		pos += t->d.nbytes;
		last = k + 1 == f->count;
		/* The next payload streams from the disk meanwhile. */
		if (!last)
			prefetch(s->in_fd, (uint64_t)(t[1].stored - m->cmap.p),
				 t[1].d.stored_bytes);
		/* A payload the direct reader takes: its bytes, or NULL (from
		 * the mapping). */
		int item = s->dr && direct_candidate(t, k);
		df11_mtensor held = *t;
		held.stored = NULL;
		if (item && (r = df11_dread_get(s->dr, s->next_item,
						&held.stored))) {
			r = r == DF11_CHECKSUM ? stored_differs(m, t) : r;
			break;
		}
		wjob tj = {.fd = fd, .path = path, .check = 1,
			   .expect = t->sum_orig, .what = t->name, .buf = -1,
			   .close_fd = last, .final_size = f->orig_size,
			   .len = t->d.nbytes};
		if (!t->d.compressed) {
			/* Stored = original: the writer checks the one hash. */
			tj.data = t->stored;
			tj.drop = t->stored;
			tj.drop_len = t->d.stored_bytes;
		} else {
			/* The payload is checked against its own hash (a
			 * corrupt container is refused even where the damage
			 * would not reach the output, as df11-verify refuses
			 * it) while it is decoded, and what the decoder writes
			 * against the original's hash, before anything is
			 * committed. A failed decode of a payload that differs
			 * from its hash says so (decode_failed). */
			const df11_mtensor *src = held.stored ? &held : t;
			if (held.stored)
				__atomic_fetch_add(&df11_unpack_direct_payloads, 1,
						   __ATOMIC_RELAXED);
			if ((r = df11_mtensor_payload_check(m, src)))
				r = decode_failed(m, src, r);
			/* Bytes the reader holds were checked as they came. */
			int inline_hash = !held.stored && hashed_from_map(t);
			int on_thread = !r && !held.stored && !inline_hash;
			int checking = on_thread && pverify_start(s, t);
			if (on_thread && !checking && !payload_intact(s->xxh, t))
				r = stored_differs(m, t);
			if (!r)
				r = unpack_pieces(s, src, !held.stored, inline_hash,
						  &tj, t_pos, *done, total);
			/* The file's last job is queued once all pieces are. */
			if (!r && last)
				fd_queued = 1;
			df11_result vr = checking ? pverify_finish(s, t) : DF11_OK;
			if (item)
				df11_dread_release(s->dr, s->next_item++);
			/* The payload's pages leave RSS (the cache keeps them). */
			if (!held.stored)
				drop_pages(m->cmap.p, t->stored, t->d.stored_bytes);
			if (!r)
				r = vr;
			if (r)
				break;
			s->st.n_compressed++;
			*done += t->d.nbytes;
			if (cancelled(s->opt, *done, total))
				r = df11_fail(DF11_CANCELLED, "interrupted");
			continue;
		}
		r = writer_push(&s->w, &tj);
		fd_queued = !r && last;
		*done += t->d.nbytes;
		if (!r && cancelled(s->opt, *done, total))
			r = df11_fail(DF11_CANCELLED, "interrupted");
	}
	/* If the file's last job never went out (so r is set), its
	 * descriptor is ours, once the writer has let go of the file. */
	if (!fd_queued) {
		writer_abort(&s->w);
		close(fd);
	}
	return r;
}

/* Lists the payloads the direct reader may take, in the order
 * unpack_file meets them, and starts it. */
static df11_result start_direct_reader(unpack_state *s, const char *input)
{
	const df11_model *m = s->m;
	if (!(s->items = calloc(m->nf ? m->nf : 1, sizeof *s->items)))
		return df11_fail(DF11_NOMEM, "unpack");
	size_t n = 0;
	for (size_t fi = 0; fi < m->nf; fi++) {
		const df11_mfile *f = &m->f[fi];
		const df11_mtensor *t = &m->t[f->first];
		if (f->is_st && f->count && direct_candidate(t, 0))
			s->items[n++] = (df11_dread_item){
				(uint64_t)(t->stored - m->cmap.p),
				t->d.stored_bytes, t->sum_stored};
	}
	return df11_dread_start(input, m->cmap.p, s->items, n, &s->dr);
}

df11_result df11_unpack(const char *input, const char *output,
			const df11_pack_options *opt_in,
			df11_pack_stats *stats_ret)
{
	static const df11_pack_options defaults = {0};
	const df11_pack_options *opt = opt_in ? opt_in : &defaults;
	if (!input || !output)
		return df11_fail(DF11_INVALID_ARG, "unpack: NULL path");
	df11_result r = df11_check_reserved(opt->reserved, 8, "unpack options");
	if (!r)
		r = df11_check_output(output, opt->force);
	if (r)
		return r;
	df11_model *m;
	if ((r = df11_model_open(input, &m)))
		return r;
	if (m->kind == DF11_KIND_DFLOAT11) {
		r = df11_dfl_unpack(m, output, opt, stats_ret);
		df11_model_close(m);
		return r;
	}
	if (m->kind != DF11_KIND_CONTAINER) {
		df11_model_close(m);
		return df11_fail(DF11_INVALID_ARG, "%s is not a .df11 container",
				 input);
	}
	df11_model_set_threads(m, opt->threads);
	unpack_state s = {.m = m, .opt = opt, .in_fd = -1};
	s.pv.fd = -1;
	char *tmp = df11_temp_name(output);
	int is_dir = m->src_kind == DF11_SRC_FOLDER;
	int made = 0;
	s.xxh = XXH3_createState();
	s.dec = df11_decoder_new(opt->threads);
	if (!tmp || !s.xxh || !s.dec) {
		r = df11_fail(DF11_NOMEM, "unpack");
		goto out;
	}
	s.in_fd = open(input, O_RDONLY | O_CLOEXEC);
	if (s.in_fd < 0) {
		r = df11_fail_errno(DF11_IO, errno, "%s", input);
		goto out;
	}
	posix_fadvise(s.in_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (is_dir) {
		made = mkdtemp(tmp) != NULL;
		if (made)
			chmod(tmp, 0755);
	} else {
		int fd = mkostemp(tmp, O_CLOEXEC);
		made = fd >= 0;
		if (made) {
			fchmod(fd, 0644); /* as the folder's files */
			close(fd);
		}
	}
	if (!made) {
		r = df11_fail_errno(DF11_IO, errno, "%s", output);
		goto out;
	}
	if ((r = writer_start(&s.w, UNPACK_BUFS)) ||
	    (r = start_direct_reader(&s, input)))
		goto out;
	uint64_t total = 0, done = 0;
	for (size_t i = 0; i < m->nf; i++)
		total += m->f[i].orig_size;
	for (size_t i = 0; i < m->nf && !r; i++) {
		char path[PATH_MAX];
		if (is_dir) {
			int n = snprintf(path, sizeof path, "%s/%s", tmp,
					 m->f[i].name);
			if (n < 0 || (size_t)n >= sizeof path) {
				r = df11_fail(DF11_LIMIT, "%s: path too long",
					      m->f[i].name);
				break;
			}
			if ((r = make_parents(tmp, m->f[i].name)))
				break;
		} else {
			snprintf(path, sizeof path, "%s", tmp);
		}
		/* The writer keeps the path pointer: give it a stable copy. */
		char *keep = strdup(path);
		if (!keep) {
			r = df11_fail(DF11_NOMEM, "unpack");
			break;
		}
		r = unpack_file(&s, i, keep, &done, total);
		if (!r) {
			/* Wait for this file so that its path can be freed. */
			pthread_mutex_lock(&s.w.mu);
			while (s.w.count)
				pthread_cond_wait(&s.w.cv, &s.w.mu);
			r = s.w.err;
			pthread_mutex_unlock(&s.w.mu);
			if (r)
				r = df11_fail(r, "%s", s.w.msg);
		}
		if (r) {
			/* The reason stands, whatever the writer then says. */
			char msg[448];
			snprintf(msg, sizeof msg, "%s", error_detail(r));
			writer_finish(&s.w);
			r = df11_fail(r, "%s", msg);
			free(keep);
			break;
		}
		free(keep);
		if (cancelled(opt, done, total))
			r = df11_fail(DF11_CANCELLED, "interrupted");
	}
	df11_result wr = writer_finish(&s.w);
	if (!r)
		r = wr;
	if (!r)
		r = df11_commit_output(tmp, output);
	if (!r && stats_ret) {
		s.st.n_files = m->nf;
		s.st.n_tensors = m->nt;
		s.st.orig_bytes = total;
		s.st.bytes_out = total;
		s.st.container_bytes = m->cmap.size;
		s.st.bytes_in = m->cmap.size;
		*stats_ret = s.st;
	}
out:
	df11_out_drop(&s.w.out);
	if (r && tmp && made) {
		if (is_dir)
			df11_remove_tree(tmp);
		else
			unlink(tmp);
	}
	df11_dread_free(s.dr);
	free(s.items);
	buf_free(&s.b);
	free(s.pv.buf);
	XXH3_freeState(s.pv.st);
	if (s.in_fd >= 0)
		close(s.in_fd);
	XXH3_freeState(s.xxh);
	df11_decoder_free(s.dec);
	free(tmp);
	df11_model_close(m);
	return r;
}

/* --------------------------------------------------------------- verify */

/* Tensors are checked in pieces of at most VERIFY_PIECE bytes of output
 * (as unpack's, large enough to keep the decoder's threads busy), decoded
 * into one reused buffer, with the pages of the container and of the
 * original released as they pass: memory stays bounded whatever the
 * tensor sizes (decoding each tensor whole, a 256 MiB one took 440 MiB). */
#define VERIFY_PIECE DECODE_CHUNK

typedef struct verifier {
	df11_verify_report_fn report;
	void *ctx;
	uint64_t n_bad;
	int threads;
	df11_decoder *dec;
	XXH3_state_t *xxh;
	uint8_t *buf;          /* VERIFY_PIECE bytes, or NULL */
} verifier;

static void bad(verifier *v, const char *what, df11_result r)
{
	v->n_bad++;
	if (v->report)
		v->report(v->ctx, what, r, df11_last_error());
}

/* The original's file that a container file came from. */
static const df11_mfile *match_file(const df11_model *m, const df11_model *o,
				    const df11_mfile *f)
{
	if (m->src_kind == DF11_SRC_FILE && o->kind == DF11_KIND_SAFETENSORS)
		return f->is_st && o->nf == 1 ? &o->f[0] : NULL;
	for (size_t i = 0; i < o->nf; i++)
		if (!strcmp(o->f[i].name, f->name))
			return &o->f[i];
	return NULL;
}

/* Whether bytes [at, at + len) of a tensor equal the original's (ot, or
 * nothing to compare with); the original's pages leave RSS. */
static df11_result same_as_original(const df11_mtensor *t,
				    const df11_mtensor *ot, const df11_mfile *of,
				    const uint8_t *p, uint64_t at, uint64_t len)
{
	if (!ot)
		return DF11_OK;
	int same = !memcmp(ot->stored + at, p, (size_t)len);
	drop_pages(ot->stored, ot->stored + at, len);
	if (!same)
		return df11_fail(DF11_CHECKSUM, "tensor %s differs from the "
				 "original in %s", t->name, of->name);
	return DF11_OK;
}

/* Checks tensor t: its payload against its hash; decoded a piece at a
 * time, the output against the original's hash and, given the original
 * (ot in of), against its bytes. The failure, with its message. */
static df11_result verify_tensor(verifier *v, const df11_model *m,
				 const df11_mtensor *t, const df11_mtensor *ot,
				 const df11_mfile *of)
{
	if (!payload_intact(v->xxh, t))
		return stored_differs(m, t);
	if (!t->d.compressed) { /* Stored = original, whose hash matched. */
		for (uint64_t at = 0; at < t->d.nbytes; at += VERIFY_PIECE) {
			uint64_t n = t->d.nbytes - at < VERIFY_PIECE
					     ? t->d.nbytes - at : VERIFY_PIECE;
			df11_result r = same_as_original(t, ot, of, t->stored + at,
							 at, n);
			drop_pages(t->stored, t->stored + at, n);
			if (r)
				return r;
		}
		return DF11_OK;
	}
	df11_parsed P;
	df11_result r = df11_mtensor_payload_check(m, t);
	if (r)
		return r;
	if ((r = df11_parse(t->stored, (size_t)t->d.stored_bytes, &P)))
		return decode_failed(m, t, r);
	if (!v->dec && !(v->dec = df11_decoder_new(v->threads)))
		return df11_fail(DF11_NOMEM, "decoder");
	if (!v->buf && !(v->buf = df11_huge_map(VERIFY_PIECE)))
		return df11_fail(DF11_NOMEM, "%llu bytes for %s",
				 (unsigned long long)VERIFY_PIECE, t->name);
	df11_advise(t->stored, t->d.stored_bytes, MADV_SEQUENTIAL);
	piece_pages g = piece_pages_of(&P);
	XXH3_64bits_reset(v->xxh);
	for (uint64_t first = 0, cnt; first < t->d.n_elems; first += cnt) {
		cnt = df11_decode_piece_end(&P, first, VERIFY_PIECE / 2) - first;
		if ((r = df11_decode_parsed(v->dec, &P, first, cnt,
					    (uint16_t *)(void *)v->buf)))
			return decode_failed(m, t, r);
		drop_decoded(&g, t, &P, first, cnt);
		XXH3_64bits_update(v->xxh, v->buf, (size_t)(2 * cnt));
		if ((r = same_as_original(t, ot, of, v->buf, 2 * first, 2 * cnt)))
			return r;
	}
	if (XXH3_64bits_digest(v->xxh) != t->sum_orig)
		return df11_fail(DF11_CHECKSUM, "%s: tensor %s: decoded bytes "
				 "differ from the original's checksum", m->path,
				 t->name);
	return DF11_OK;
}

static void verify_file(verifier *v, df11_model *m, const df11_model *o,
			const df11_mfile *f)
{
	if (df11_xxh3(f->sect, (size_t)f->sect_size) != f->sect_sum) {
		df11_fail(DF11_CHECKSUM, "%s: %s: %s differ from their checksum",
			  m->path, f->name, f->is_st ? "header bytes" : "contents");
		bad(v, f->name, DF11_CHECKSUM);
	}
	const df11_mfile *of = o ? match_file(m, o, f) : NULL;
	if (o && !of) {
		df11_fail(DF11_NOT_FOUND, "%s: not in %s", f->name, o->path);
		bad(v, f->name, DF11_NOT_FOUND);
	} else if (of && (of->is_st != f->is_st || of->orig_size != f->orig_size ||
			  of->sect_size != f->sect_size ||
			  (f->sect_size &&
			   memcmp(of->sect, f->sect, (size_t)f->sect_size)) ||
			  (f->is_st && of->count != f->count))) {
		df11_fail(DF11_CHECKSUM, "%s: %s differs from %s", m->path,
			  f->name, of->name);
		bad(v, f->name, DF11_CHECKSUM);
		of = NULL;
	}
	for (size_t k = 0; f->is_st && k < f->count; k++) {
		const df11_mtensor *t = &m->t[f->first + k];
		const df11_mtensor *ot = of ? &o->t[of->first + k] : NULL;
		df11_result r = DF11_OK;
		if (ot && (strcmp(ot->name, t->name) ||
			   ot->d.nbytes != t->d.nbytes))
			r = df11_fail(DF11_CHECKSUM, "tensor %s differs from the "
				      "original in %s", t->name, of->name);
		if (!r)
			r = verify_tensor(v, m, t, ot, of);
		if (r)
			bad(v, t->name, r);
		if (ot)
			drop_pages(of->map.p, ot->stored, ot->d.nbytes);
		drop_pages(m->cmap.p, t->stored, t->d.stored_bytes);
	}
}

df11_result df11_verify(const char *input, const char *against,
			const df11_pack_options *opt_in,
			df11_verify_report_fn report, void *report_ctx,
			uint64_t *n_bad_ret)
{
	static const df11_pack_options defaults = {0};
	const df11_pack_options *opt = opt_in ? opt_in : &defaults;
	verifier v = {report, report_ctx, 0, opt->threads, NULL, NULL, NULL};
	df11_model *m = NULL, *o = NULL;
	if (n_bad_ret)
		*n_bad_ret = 0;
	if (!input)
		return df11_fail(DF11_INVALID_ARG, "verify: NULL path");
	df11_result r = df11_check_reserved(opt->reserved, 8, "verify options");
	if (!r)
		r = df11_model_open(input, &m);
	if (r)
		return r;
	if (m->kind != DF11_KIND_CONTAINER) {
		r = df11_fail(DF11_INVALID_ARG, "%s is not a .df11 container",
			      input);
		goto out;
	}
	if (!(v.xxh = XXH3_createState())) {
		r = df11_fail(DF11_NOMEM, "verify");
		goto out;
	}
	if (against) {
		if ((r = df11_model_open(against, &o)))
			goto out;
		if (o->kind == DF11_KIND_DFLOAT11) {
			r = df11_fail(DF11_UNSUPPORTED, "%s: a DFloat11 folder: "
				      "decode it (df11-decode) to compare with it",
				      against);
			goto out;
		}
		if (o->kind == DF11_KIND_CONTAINER) {
			r = df11_fail(DF11_INVALID_ARG, "%s: --against needs the "
				      "original checkpoint, not a container",
				      against);
			goto out;
		}
		if ((o->kind == DF11_KIND_FOLDER) !=
		    (m->src_kind == DF11_SRC_FOLDER)) {
			df11_fail(DF11_CHECKSUM, "%s was made from a %s, %s is a "
				  "%s", input, m->src_kind ? "folder" : "file",
				  against,
				  o->kind == DF11_KIND_FOLDER ? "folder" : "file");
			bad(&v, against, DF11_CHECKSUM);
			goto out;
		}
	}
	uint64_t total = 0, done = 0;
	for (size_t i = 0; i < m->nf; i++)
		total += m->f[i].orig_size;
	for (size_t i = 0; i < m->nf; i++) {
		verify_file(&v, m, o, &m->f[i]);
		done += m->f[i].orig_size;
		if (cancelled(opt, done, total)) {
			r = df11_fail(DF11_CANCELLED, "interrupted");
			goto out;
		}
	}
	/* Files of the original that the container lacks. */
	for (size_t i = 0; o && m->src_kind == DF11_SRC_FOLDER && i < o->nf; i++) {
		int found = 0;
		for (size_t k = 0; k < m->nf && !found; k++)
			found = !strcmp(m->f[k].name, o->f[i].name);
		if (!found) {
			df11_fail(DF11_NOT_FOUND, "%s: not in %s", o->f[i].name,
				  input);
			bad(&v, o->f[i].name, DF11_NOT_FOUND);
		}
	}
out:
	if (v.buf)
		munmap(v.buf, VERIFY_PIECE);
	df11_decoder_free(v.dec);
	XXH3_freeState(v.xxh);
	df11_model_close(m);
	df11_model_close(o);
	if (n_bad_ret)
		*n_bad_ret = v.n_bad;
	if (!r && v.n_bad)
		r = df11_fail(DF11_CHECKSUM, "%llu tensors or files differ",
			      (unsigned long long)v.n_bad);
	return r;
}
