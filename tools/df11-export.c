/*
 * df11-export: writes a checkpoint (.df11 container, .safetensors file or
 * checkpoint folder) as an HDF5 file that h5py and h5dump read with the
 * df11 filter plugin (docs/HDF5.md).
 *
 *   df11-export INPUT --hdf5 -o OUT.h5 [--chunk-kib N] [--threads N]
 *                                      [--verify] [--force]
 *
 * One dataset per tensor, named by the tensor's name ('/' in a name makes
 * groups). BF16 tensors are stored as H5T_STD_U16LE words (the BF16 bit
 * patterns, so every reader gets them back bit for bit; HDF5 1.10 has no
 * bfloat16 and a custom 16-bit float type is converted, NaN payloads lost,
 * on read) in row-major chunks of about --chunk-kib KiB compressed with the
 * df11 filter. The chunks are encoded on --threads threads and stored with
 * H5Dwrite_chunk, exactly as the filter would store them. Other dtypes get
 * their native HDF5 types, uncompressed. Attributes: "dtype" (safetensors
 * spelling) and "shape" on every dataset; "config.json", "source" and
 * "df11_filter_id" on the root group.
 *
 * The output is written under a temporary name and renamed into place
 * when complete; a failed or interrupted run leaves nothing at OUT.h5.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <H5PLextern.h>

#include "df11.h"
#include "common/parallel.h"
#include "hdf5/df11_h5filter.h"

#define DEFAULT_CHUNK_KIB 1024
#define MAX_THREADS 64
#define CHUNKS_PER_THREAD 4 /* chunks encoded per thread between writes */

static const char *prog = "df11-export";

/* The temporary output, removed by a signal handler if interrupted. */
static char tmp_path[PATH_MAX];
static volatile sig_atomic_t tmp_live;

static void on_signal(int sig)
{
	if (tmp_live)
		unlink(tmp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void usage(FILE *to)
{
	fprintf(to,
		"usage: %s INPUT --hdf5 -o OUT.h5 [--chunk-kib N] [--threads N]\n"
		"                  [--verify] [--force]\n"
		"  INPUT         a .df11 container, a .safetensors file or a "
		"checkpoint folder\n"
		"  --hdf5        write HDF5 (the only export format for now)\n"
		"  --chunk-kib N BF16 chunk size in KiB (default %d)\n"
		"  --threads N   encoder threads (default: online CPUs)\n"
		"  --verify      read every dataset back and compare bit for bit\n"
		"  --force       replace OUT.h5 if it exists\n"
		"Reading OUT.h5 needs the df11 filter plugin: see docs/HDF5.md.\n",
		prog, DEFAULT_CHUNK_KIB);
}

/* ------------------------------------------------------ error reporting */

static char h5_msg[512];

static herr_t first_h5_error(unsigned n, const H5E_error2_t *e, void *ctx)
{
	(void)ctx;
	/* Walked upward: the deepest record, the real cause, comes first;
	 * keep the first df11 filter message if there is one. */
	if (!e->desc)
		return 0;
	if (n == 0 || (strstr(e->desc, "df11") && !strstr(h5_msg, "df11")))
		snprintf(h5_msg, sizeof h5_msg, "%s(): %s", e->func_name,
			 e->desc);
	return 0;
}

/* The reason HDF5 gave for the last failure, one line. */
static const char *h5_reason(void)
{
	h5_msg[0] = 0;
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_h5_error, NULL);
	H5Eclear2(H5E_DEFAULT);
	return h5_msg[0] ? h5_msg : "unknown HDF5 error";
}

static char err_msg[1024];

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof err_msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* ------------------------------------------------------------ datatypes */

/* The HDF5 type a dtype is stored as (a new id, closed by the caller),
 * chosen so that reading it with the same type returns the stored bytes
 * unchanged. */
static hid_t file_type(df11_dtype t)
{
	switch (t) {
	case DF11_DTYPE_BOOL: {
		/* h5py's own bool: an int8 enum FALSE=0, TRUE=1. */
		hid_t e = H5Tenum_create(H5T_NATIVE_INT8);
		int8_t f = 0, v = 1;
		H5Tenum_insert(e, "FALSE", &f);
		H5Tenum_insert(e, "TRUE", &v);
		return e;
	}
	case DF11_DTYPE_U8:
	case DF11_DTYPE_F8_E4M3: /* no HDF5 float8: bytes + "dtype" */
	case DF11_DTYPE_F8_E5M2:
		return H5Tcopy(H5T_STD_U8LE);
	case DF11_DTYPE_I8: return H5Tcopy(H5T_STD_I8LE);
	case DF11_DTYPE_U16:
	case DF11_DTYPE_BF16: return H5Tcopy(H5T_STD_U16LE);
	case DF11_DTYPE_I16: return H5Tcopy(H5T_STD_I16LE);
	case DF11_DTYPE_F16: {
		/* IEEE half as h5py defines it, so h5py maps it to float16. */
		hid_t h = H5Tcopy(H5T_IEEE_F32LE);
		H5Tset_fields(h, 15, 10, 5, 0, 10);
		H5Tset_size(h, 2);
		H5Tset_ebias(h, 15);
		return h;
	}
	case DF11_DTYPE_U32: return H5Tcopy(H5T_STD_U32LE);
	case DF11_DTYPE_I32: return H5Tcopy(H5T_STD_I32LE);
	case DF11_DTYPE_F32: return H5Tcopy(H5T_IEEE_F32LE);
	case DF11_DTYPE_U64: return H5Tcopy(H5T_STD_U64LE);
	case DF11_DTYPE_I64: return H5Tcopy(H5T_STD_I64LE);
	case DF11_DTYPE_F64: return H5Tcopy(H5T_IEEE_F64LE);
	default: return -1;
	}
}

static int put_string_attr(hid_t obj, const char *name, const char *s,
			   size_t len)
{
	hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR), a = -1;
	int ok = t >= 0 && sp >= 0 && H5Tset_size(t, H5T_VARIABLE) >= 0 &&
		 H5Tset_cset(t, H5T_CSET_UTF8) >= 0;
	char *copy = malloc(len + 1);
	if (ok && copy) {
		memcpy(copy, s, len);
		copy[len] = 0;
		ok = (a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT,
				     H5P_DEFAULT)) >= 0 &&
		     H5Awrite(a, t, &copy) >= 0;
	} else {
		ok = 0;
	}
	free(copy);
	if (a >= 0)
		H5Aclose(a);
	if (sp >= 0)
		H5Sclose(sp);
	if (t >= 0)
		H5Tclose(t);
	return ok ? 0 : fail("attribute %s: %s", name, h5_reason());
}

static int put_u64_attr(hid_t obj, const char *name, const uint64_t *v,
			hsize_t n)
{
	hid_t sp = H5Screate_simple(1, &n, NULL), a = -1;
	int ok = sp >= 0 &&
		 (a = H5Acreate2(obj, name, H5T_STD_U64LE, sp, H5P_DEFAULT,
				 H5P_DEFAULT)) >= 0 &&
		 H5Awrite(a, H5T_NATIVE_UINT64, v) >= 0;
	if (a >= 0)
		H5Aclose(a);
	if (sp >= 0)
		H5Sclose(sp);
	return ok ? 0 : fail("attribute %s: %s", name, h5_reason());
}

/* ------------------------------------------------------- BF16 chunking */

/*
 * Chunks that are contiguous runs of the row-major tensor, so that a chunk
 * is a slice of the buffer: dims before `split` have chunk extent 1, dim
 * `split` has extent `rows`, the dims after it are whole.
 *
 *   shape (4096, 11008), target 512 Ki words -> chunk (47, 11008)
 *   shape (151936,) , target 512 Ki words    -> chunk (151936,)
 */
typedef struct chunking {
	int ndim, split;
	uint64_t rows;       /* chunk extent along dim split */
	uint64_t inner;      /* elements per unit of dim split */
	uint64_t n_chunks;
	hsize_t dims[DF11_MAX_DIMS];
} chunking;

static void plan_chunks(const df11_tensor_desc *d, uint64_t target,
			chunking *c)
{
	int s = d->ndim - 1;
	uint64_t inner = 1;
	/* Whole trailing dims while they fit in the target. */
	while (s > 0 && d->shape[s] <= target / inner) {
		inner *= d->shape[s];
		s--;
	}
	uint64_t rows = target / inner;
	if (rows < 1)
		rows = 1;
	if (rows > d->shape[s])
		rows = d->shape[s];
	c->ndim = d->ndim;
	c->split = s;
	c->rows = rows;
	c->inner = inner;
	c->n_chunks = (d->shape[s] + rows - 1) / rows;
	for (int i = 0; i < s; i++)
		c->n_chunks *= d->shape[i];
	for (int i = 0; i < d->ndim; i++)
		c->dims[i] = i < s ? 1 : i == s ? rows : d->shape[i];
}

typedef struct encode_job {
	const df11_tensor_desc *desc;
	const chunking *c;
	const uint16_t *src;      /* the whole tensor */
	uint64_t first, count;    /* chunks of this batch */
	int threads;
	size_t cap;               /* payload capacity per chunk */
	uint8_t **payload;        /* [count] */
	size_t *size;             /* [count] */
	hsize_t (*offset)[DF11_MAX_DIMS]; /* [count] chunk origin */
	uint16_t **pad;           /* [threads] scratch for edge chunks */
	df11_result *result;      /* [threads] */
	char (*message)[256];     /* [threads] */
} encode_job;

/* Chunk k: its origin in element coordinates and the part of the tensor
 * it covers, [start, start + n) in row-major order. */
static void locate_chunk(const df11_tensor_desc *d, const chunking *c,
			 uint64_t k, hsize_t *origin, uint64_t *start,
			 uint64_t *n)
{
	uint64_t per_split = (d->shape[c->split] + c->rows - 1) / c->rows;
	uint64_t row_chunk = k % per_split, rest = k / per_split;
	uint64_t elem = 0, stride = c->inner * d->shape[c->split];
	for (int i = 0; i < d->ndim; i++)
		origin[i] = 0;
	origin[c->split] = row_chunk * c->rows;
	for (int i = c->split - 1; i >= 0; i--) {
		origin[i] = rest % d->shape[i];
		rest /= d->shape[i];
		elem += origin[i] * stride;
		stride *= d->shape[i];
	}
	uint64_t rows = d->shape[c->split] - origin[c->split];
	if (rows > c->rows)
		rows = c->rows;
	*start = elem + origin[c->split] * c->inner;
	*n = rows * c->inner;
}

static void encode_worker(void *arg, int t)
{
	encode_job *J = arg;
	const uint64_t full = J->c->rows * J->c->inner;
	J->result[t] = DF11_OK;
	for (uint64_t j = (uint64_t)t; j < J->count; j += (uint64_t)J->threads) {
		uint64_t start, n;
		locate_chunk(J->desc, J->c, J->first + j, J->offset[j], &start,
			     &n);
		const uint16_t *words = J->src + start;
		if (n < full) {
			/* HDF5 stores an edge chunk whole; the part outside
			 * the dataset is never read back. */
			memcpy(J->pad[t], words, n * 2);
			memset(J->pad[t] + n, 0, (full - n) * 2);
			words = J->pad[t];
		}
		df11_result r = df11_h5_payload_encode(words, full * 2,
						       J->payload[j], J->cap,
						       &J->size[j]);
		if (r != DF11_OK) {
			J->result[t] = r;
			snprintf(J->message[t], sizeof J->message[t], "%s",
				 df11_last_error());
			return;
		}
	}
}

typedef struct export_stats {
	uint64_t tensors, bf16_tensors, bf16_bytes, bf16_stored, other_bytes;
} export_stats;

/* Writes a BF16 tensor's chunks, encoded on `threads` threads. */
static int write_bf16(hid_t ds, const df11_tensor_desc *d, const chunking *c,
		      const uint16_t *src, int threads, export_stats *st)
{
	const uint64_t full = c->rows * c->inner;
	uint64_t batch = (uint64_t)threads * CHUNKS_PER_THREAD;
	if (batch > c->n_chunks)
		batch = c->n_chunks;
	if (threads > (int)batch)
		threads = (int)batch;
	encode_job J = {
		.desc = d, .c = c, .src = src, .threads = threads,
		.cap = df11_h5_payload_bound(full * 2),
	};
	int rc = -1;
	J.payload = calloc(batch, sizeof *J.payload);
	J.size = calloc(batch, sizeof *J.size);
	J.offset = calloc(batch, sizeof *J.offset);
	J.pad = calloc((size_t)threads, sizeof *J.pad);
	J.result = calloc((size_t)threads, sizeof *J.result);
	J.message = calloc((size_t)threads, sizeof *J.message);
	if (!J.payload || !J.size || !J.offset || !J.pad || !J.result ||
	    !J.message)
		goto nomem;
	for (uint64_t j = 0; j < batch; j++)
		if (!(J.payload[j] = malloc(J.cap)))
			goto nomem;
	for (int t = 0; t < threads; t++)
		if (!(J.pad[t] = malloc(full * 2)))
			goto nomem;

	for (uint64_t first = 0; first < c->n_chunks; first += batch) {
		J.first = first;
		J.count = c->n_chunks - first < batch ? c->n_chunks - first
						       : batch;
		df11_parallel_run(threads, encode_worker, &J);
		for (int t = 0; t < threads; t++)
			if (J.result[t] != DF11_OK) {
				fail("%s: encoding a chunk: %s", d->name,
				     J.message[t]);
				goto out;
			}
		for (uint64_t j = 0; j < J.count; j++) {
			if (H5Dwrite_chunk(ds, H5P_DEFAULT, 0, J.offset[j],
					   J.size[j], J.payload[j]) < 0) {
				fail("%s: writing chunk %llu: %s", d->name,
				     (unsigned long long)(first + j),
				     h5_reason());
				goto out;
			}
			st->bf16_stored += J.size[j];
		}
	}
	rc = 0;
	goto out;
nomem:
	fail("%s: out of memory for %d encoder threads", d->name, threads);
out:
	if (J.payload)
		for (uint64_t j = 0; j < batch; j++)
			free(J.payload[j]);
	if (J.pad)
		for (int t = 0; t < threads; t++)
			free(J.pad[t]);
	free(J.payload);
	free(J.size);
	free(J.offset);
	free(J.pad);
	free(J.result);
	free(J.message);
	return rc;
}

/* ------------------------------------------------------------- tensors */

static int verify_dataset(hid_t ds, hid_t type, const df11_tensor_desc *d,
			  const void *want)
{
	void *back = malloc(d->nbytes ? d->nbytes : 1);
	if (!back)
		return fail("%s: out of memory to verify", d->name);
	int rc = 0;
	if (H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) < 0)
		rc = fail("%s: reading back: %s", d->name, h5_reason());
	else if (memcmp(back, want, d->nbytes) != 0)
		rc = fail("%s: read back differs from the input", d->name);
	free(back);
	return rc;
}

static int export_tensor(df11_model *m, size_t i, hid_t file, hid_t lcpl,
			 uint64_t chunk_words, int threads, int verify,
			 export_stats *st)
{
	df11_tensor_desc d;
	df11_result r = df11_model_tensor(m, i, &d);
	if (r != DF11_OK)
		return fail("%s", df11_last_error());
	if (d.nbytes > SIZE_MAX - 1)
		return fail("%s: too large for this machine", d.name);
	if (d.name[0] == 0)
		return fail("tensor %zu has an empty name", i);
	hid_t type = file_type(d.dtype);
	if (type < 0)
		return fail("%s: dtype %d has no HDF5 type", d.name,
			    (int)d.dtype);
	void *buf = malloc(d.nbytes ? d.nbytes : 1);
	hid_t space = -1, dcpl = -1, ds = -1;
	int rc = -1;
	if (!buf) {
		fail("%s: out of memory for %llu bytes", d.name,
		     (unsigned long long)d.nbytes);
		goto out;
	}
	if ((r = df11_model_read(m, i, buf, d.nbytes)) != DF11_OK) {
		fail("%s", df11_last_error());
		goto out;
	}

	hsize_t dims[DF11_MAX_DIMS];
	for (int k = 0; k < d.ndim; k++)
		dims[k] = d.shape[k];
	space = d.ndim ? H5Screate_simple(d.ndim, dims, NULL)
		       : H5Screate(H5S_SCALAR);
	dcpl = H5Pcreate(H5P_DATASET_CREATE);
	if (space < 0 || dcpl < 0) {
		fail("%s: %s", d.name, h5_reason());
		goto out;
	}
	/* BF16 with at least one element and one dim: chunked + df11. */
	int compress = d.dtype == DF11_DTYPE_BF16 && d.ndim > 0 && d.n_elems;
	chunking c;
	if (compress) {
		plan_chunks(&d, chunk_words, &c);
		if (H5Pset_chunk(dcpl, d.ndim, c.dims) < 0 ||
		    H5Pset_filter(dcpl, DF11_H5_FILTER_ID, H5Z_FLAG_MANDATORY,
				  0, NULL) < 0) {
			fail("%s: %s", d.name, h5_reason());
			goto out;
		}
	}
	ds = H5Dcreate2(file, d.name, type, space, lcpl, dcpl, H5P_DEFAULT);
	if (ds < 0) {
		fail("cannot create dataset \"%s\": %s", d.name, h5_reason());
		goto out;
	}
	if (compress) {
		if (write_bf16(ds, &d, &c, buf, threads, st) < 0)
			goto out;
		st->bf16_tensors++;
		st->bf16_bytes += d.nbytes;
	} else {
		if (d.n_elems && H5Dwrite(ds, type, H5S_ALL, H5S_ALL,
					  H5P_DEFAULT, buf) < 0) {
			fail("%s: writing: %s", d.name, h5_reason());
			goto out;
		}
		st->other_bytes += d.nbytes;
	}
	const char *dtype = df11_dtype_name(d.dtype);
	if (put_string_attr(ds, "dtype", dtype, strlen(dtype)) < 0 ||
	    put_u64_attr(ds, "shape", d.shape, (hsize_t)d.ndim) < 0)
		goto out;
	if (verify && d.n_elems && verify_dataset(ds, type, &d, buf) < 0)
		goto out;
	st->tensors++;
	rc = 0;
out:
	if (ds >= 0)
		H5Dclose(ds);
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (space >= 0)
		H5Sclose(space);
	H5Tclose(type);
	free(buf);
	return rc;
}

static int export_model(df11_model *m, const char *input, hid_t file,
			uint64_t chunk_words, int threads, int verify,
			export_stats *st)
{
	const void *cfg;
	size_t cfg_size;
	df11_result r = df11_model_file(m, "config.json", &cfg, &cfg_size);
	if (r == DF11_OK) {
		if (memchr(cfg, 0, cfg_size))
			return fail("config.json holds a NUL byte");
		if (put_string_attr(file, "config.json", cfg, cfg_size) < 0)
			return -1;
	} else if (r != DF11_NOT_FOUND) {
		return fail("%s", df11_last_error());
	}
	const char *base = strrchr(input, '/');
	base = base && base[1] ? base + 1 : input;
	uint64_t id = DF11_H5_FILTER_ID;
	if (put_string_attr(file, "source", base, strlen(base)) < 0 ||
	    put_u64_attr(file, "df11_filter_id", &id, 1) < 0)
		return -1;

	/* '/' in a tensor name makes groups, as h5py's f["a/b"] does. */
	hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
	if (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0)
		return fail("%s", h5_reason());
	int rc = 0;
	size_t n = df11_model_num_tensors(m);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = export_tensor(m, i, file, lcpl, chunk_words, threads,
				   verify, st);
	H5Pclose(lcpl);
	return rc;
}

/* ---------------------------------------------------------------- main */

static int parse_int(const char *s, long lo, long hi, long *v)
{
	char *end;
	errno = 0;
	long x = strtol(s, &end, 10);
	if (errno || end == s || *end || x < lo || x > hi)
		return -1;
	*v = x;
	return 0;
}

int main(int argc, char **argv)
{
	const char *input = NULL, *output = NULL;
	int hdf5 = 0, force = 0, verify = 0;
	long chunk_kib = DEFAULT_CHUNK_KIB, threads = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--hdf5")) {
			hdf5 = 1;
		} else if (!strcmp(a, "--force")) {
			force = 1;
		} else if (!strcmp(a, "--verify")) {
			verify = 1;
		} else if (!strcmp(a, "-o") && i + 1 < argc) {
			output = argv[++i];
		} else if (!strcmp(a, "--chunk-kib") && i + 1 < argc) {
			if (parse_int(argv[++i], 1, 1 << 20, &chunk_kib) < 0) {
				fprintf(stderr, "%s: --chunk-kib wants 1..1048576"
					"\n", prog);
				return 2;
			}
		} else if (!strcmp(a, "--threads") && i + 1 < argc) {
			if (parse_int(argv[++i], 1, MAX_THREADS, &threads) < 0) {
				fprintf(stderr, "%s: --threads wants 1..%d\n",
					prog, MAX_THREADS);
				return 2;
			}
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "%s: unknown option %s (try --help)\n",
				prog, a);
			return 2;
		} else if (!input) {
			input = a;
		} else {
			fprintf(stderr, "%s: more than one INPUT (%s)\n", prog, a);
			return 2;
		}
	}
	if (!input || !output || !hdf5) {
		usage(stderr);
		return 2;
	}
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
	}
	struct stat st_out;
	if (!force && stat(output, &st_out) == 0) {
		fprintf(stderr, "%s: %s exists (--force replaces it)\n", prog,
			output);
		return 1;
	}
	int n = snprintf(tmp_path, sizeof tmp_path, "%s.tmp-%ld", output,
			 (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp_path) {
		fprintf(stderr, "%s: output path too long\n", prog);
		return 1;
	}

	df11_model *m = NULL;
	if (df11_model_open(input, &m) != DF11_OK) {
		fprintf(stderr, "%s: %s\n", prog, df11_last_error());
		return 1;
	}
	df11_model_set_threads(m, (int)threads);

	/* The tool reports HDF5 errors itself, one line. */
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	/* The filter is compiled in: the tool needs no HDF5_PLUGIN_PATH. */
	if (H5Zregister(H5PLget_plugin_info()) < 0) {
		fprintf(stderr, "%s: registering the df11 filter: %s\n", prog,
			h5_reason());
		df11_model_close(m);
		return 1;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	tmp_live = 1;
	hid_t file = H5Fcreate(tmp_path, H5F_ACC_EXCL, H5P_DEFAULT,
			       H5P_DEFAULT);
	export_stats st = { 0 };
	int rc;
	if (file < 0) {
		rc = fail("cannot create %s: %s", tmp_path, h5_reason());
	} else {
		rc = export_model(m, input, file, (uint64_t)chunk_kib * 512,
				  (int)threads, verify, &st);
		if (H5Fclose(file) < 0 && rc == 0)
			rc = fail("closing %s: %s", tmp_path, h5_reason());
	}
	df11_model_close(m);
	if (rc == 0 && rename(tmp_path, output) != 0)
		rc = fail("renaming %s to %s: %s", tmp_path, output,
			  strerror(errno));
	if (rc != 0) {
		unlink(tmp_path);
		tmp_live = 0;
		fprintf(stderr, "%s: %s\n", prog, err_msg);
		return 1;
	}
	tmp_live = 0;
	printf("%s: %llu tensors -> %s; %llu BF16 tensors, %.1f MiB stored in "
	       "%.1f MiB (%.1f%%), %.1f MiB other dtypes%s\n",
	       prog, (unsigned long long)st.tensors, output,
	       (unsigned long long)st.bf16_tensors, st.bf16_bytes / 1048576.0,
	       st.bf16_stored / 1048576.0,
	       st.bf16_bytes ? 100.0 * st.bf16_stored / st.bf16_bytes : 0.0,
	       st.other_bytes / 1048576.0, verify ? ", verified" : "");
	return 0;
}
