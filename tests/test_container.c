/* The .df11 container: round trips of files and sharded folders byte for
 * byte, the model API over a container, and corruption anywhere (a
 * flipped bit in any tensor, header, directory, truncation) caught with
 * the failing tensor named, never written out silently. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "df11.h"
#include "codec/format.h"
#include "df11/model_internal.h"
#include "synth/synth.h"
#include "tests/model_testutil.h"

static void assert_same_file(const char *a, const char *b)
{
	size_t na, nb;
	uint8_t *pa = read_bytes(a, &na), *pb = read_bytes(b, &nb);
	assert_int_equal(na, nb);
	assert_memory_equal(pa, pb, na);
	free(pa);
	free(pb);
}

/* File name under folders a and b: the same bytes. */
static void assert_same_in(const char *a, const char *b, const char *name)
{
	char *pa = path_join(a, name), *pb = path_join(b, name);
	assert_same_file(pa, pb);
	free(pa);
	free(pb);
}

/* No temporary files left next to outputs. */
static void assert_no_temp(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp."))
			fail_msg("temporary %s left in %s", e->d_name, dir);
	closedir(d);
}

static int exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

static void test_file_roundtrip(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *in = path_join(dir, "m.safetensors");
	char *ct = path_join(dir, "m.df11");
	char *out = path_join(dir, "back.safetensors");
	write_st_mixed(in, 4, 300, 257, 5);
	df11_pack_options opt = {.threads = 3};
	df11_pack_stats st;
	assert_int_equal(df11_pack(in, ct, &opt, &st), DF11_OK);
	assert_int_equal(st.n_files, 1);
	assert_int_equal(st.n_tensors, 10);
	/* 4 matrices + norm + scalar; the empty tensor is stored. */
	assert_int_equal(st.n_compressed, 6);
	assert_true(st.container_bytes < st.orig_bytes);
	assert_int_equal(df11_unpack(ct, out, &opt, &st), DF11_OK);
	assert_same_file(in, out);

	/* The same tensors through the model API, from either file. */
	df11_model *a, *b;
	assert_int_equal(df11_model_open(in, &a), DF11_OK);
	assert_int_equal(df11_model_open(ct, &b), DF11_OK);
	assert_int_equal(df11_model_num_tensors(a), df11_model_num_tensors(b));
	for (size_t i = 0; i < df11_model_num_tensors(a); i++) {
		df11_tensor_desc da, db;
		assert_int_equal(df11_model_tensor(a, i, &da), DF11_OK);
		assert_int_equal(df11_model_tensor(b, i, &db), DF11_OK);
		assert_string_equal(da.name, db.name);
		assert_int_equal(da.dtype, db.dtype);
		assert_int_equal(da.ndim, db.ndim);
		assert_memory_equal(da.shape, db.shape, sizeof da.shape);
		assert_int_equal(da.nbytes, db.nbytes);
		uint8_t *x = malloc(da.nbytes + 1), *y = malloc(da.nbytes + 1);
		assert_int_equal(df11_model_read(a, i, x, da.nbytes), DF11_OK);
		assert_int_equal(df11_model_read(b, i, y, db.nbytes), DF11_OK);
		assert_memory_equal(x, y, da.nbytes);
		if (db.compressed) {
			assert_int_equal(db.dtype, DF11_DTYPE_BF16);
			const void *enc;
			size_t n;
			assert_int_equal(df11_model_encoded(b, i, &enc, &n), DF11_OK);
			assert_int_equal(n, db.stored_bytes);
			/* Payloads are aligned for mmap and GPU upload. */
			assert_int_equal((uintptr_t)enc % DF11_CT_ALIGN, 0);
			uint64_t first = da.n_elems / 3, cnt = da.n_elems / 2;
			uint16_t *r = malloc(2 * cnt + 2);
			assert_int_equal(df11_model_read_range(b, i, first, cnt, r),
					 DF11_OK);
			assert_memory_equal(r, x + 2 * first, 2 * cnt);
			free(r);
		}
		free(x);
		free(y);
	}
	df11_model_close(a);
	df11_model_close(b);

	/* Outputs are never replaced without force. */
	assert_int_equal(df11_pack(in, ct, &opt, &st), DF11_EXISTS);
	assert_int_equal(df11_unpack(ct, out, &opt, &st), DF11_EXISTS);
	opt.force = 1;
	assert_int_equal(df11_pack(in, ct, &opt, &st), DF11_OK);
	assert_int_equal(df11_unpack(ct, out, &opt, &st), DF11_OK);
	assert_same_file(in, out);
	/* Wrong kinds of input. */
	char *ct2 = path_join(dir, "again.df11");
	assert_int_equal(df11_pack(ct, ct2, &opt, &st), DF11_INVALID_ARG);
	assert_int_equal(df11_unpack(in, ct2, &opt, &st), DF11_INVALID_ARG);
	assert_false(exists(ct2));
	assert_no_temp(dir);
	free(ct2);
	free(in);
	free(ct);
	free(out);
	rm_tree(dir);
	free(dir);
}

static void make_folder(const char *dir)
{
	char *s1 = path_join(dir, "model-00001-of-00002.safetensors");
	char *s2 = path_join(dir, "model-00002-of-00002.safetensors");
	char *cfg = path_join(dir, "config.json");
	char *tok = path_join(dir, "tokenizer.json");
	char *sub = path_join(dir, "original");
	char *subf = path_join(dir, "original/params.json");
	char *empty = path_join(dir, "empty.txt");
	write_st_mixed(s1, 2, 64, 96, 11);
	/* A second shard without BF16 and with an odd-sized header, so that
	 * its data area starts at an odd offset. */
	uint8_t d[7] = {1, 2, 3, 4, 5, 6, 7};
	write_st(s2, "{\"c\":{\"dtype\":\"I8\",\"shape\":[7],\"data_offsets\":"
		 "[0,7]}}", d, 7);
	write_bytes(cfg, "{\"hidden_size\": 96}\n", 20);
	write_bytes(tok, "{\"model\": {}}\n", 14);
	assert_int_equal(mkdir(sub, 0755), 0);
	write_bytes(subf, "{}", 2);
	write_bytes(empty, "", 0);
	char idx[] = "{\"metadata\":{},\"weight_map\":{"
		     "\"w.0\":\"model-00001-of-00002.safetensors\","
		     "\"c\":\"model-00002-of-00002.safetensors\"}}";
	char *ip = path_join(dir, "model.safetensors.index.json");
	write_bytes(ip, idx, strlen(idx));
	free(ip);
	free(s1);
	free(s2);
	free(cfg);
	free(tok);
	free(sub);
	free(subf);
	free(empty);
}

static void test_folder_roundtrip(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *in = path_join(dir, "ckpt");
	char *ct = path_join(dir, "ckpt.df11");
	char *out = path_join(dir, "back");
	assert_int_equal(mkdir(in, 0755), 0);
	make_folder(in);
	df11_pack_options opt = {.threads = 2};
	df11_pack_stats st;
	assert_int_equal(df11_pack(in, ct, &opt, &st), DF11_OK);
	assert_int_equal(st.n_files, 7);
	assert_int_equal(df11_unpack(ct, out, &opt, &st), DF11_OK);
	static const char *files[] = {
		"model-00001-of-00002.safetensors",
		"model-00002-of-00002.safetensors", "config.json",
		"tokenizer.json", "original/params.json", "empty.txt",
		"model.safetensors.index.json",
	};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		assert_same_in(in, out, files[i]);
	df11_model *m;
	assert_int_equal(df11_model_open(ct, &m), DF11_OK);
	const void *p;
	size_t n;
	assert_int_equal(df11_model_file(m, "config.json", &p, &n), DF11_OK);
	assert_int_equal(n, 20);
	assert_memory_equal(p, "{\"hidden_size\": 96}\n", 20);
	assert_int_equal(df11_model_file(m, "original/params.json", &p, &n),
			 DF11_OK);
	assert_int_equal(df11_model_file(m, "nope.json", &p, &n), DF11_NOT_FOUND);
	size_t i;
	assert_int_equal(df11_model_find(m, "c", &i), DF11_OK);
	assert_int_equal(df11_model_find(m, "w.1", &i), DF11_OK);
	df11_model_close(m);
	/* verify against the original folder: intact. */
	uint64_t n_bad = 9;
	assert_int_equal(df11_verify(ct, in, &opt, NULL, NULL, &n_bad), DF11_OK);
	assert_int_equal(n_bad, 0);
	/* A changed carried file in the original is found and named. */
	char *cfg = path_join(in, "config.json");
	write_bytes(cfg, "{\"hidden_size\": 97}\n", 20);
	assert_int_equal(df11_verify(ct, in, &opt, NULL, NULL, &n_bad),
			 DF11_CHECKSUM);
	assert_int_equal(n_bad, 1);
	free(cfg);
	assert_no_temp(dir);
	free(in);
	free(ct);
	free(out);
	rm_tree(dir);
	free(dir);
}

typedef struct reports {
	int n;
	char what[8][128];
} reports;

static void collect(void *ctx, const char *what, df11_result r,
		    const char *message)
{
	(void)r;
	(void)message;
	reports *rp = ctx;
	if (rp->n < 8)
		snprintf(rp->what[rp->n], sizeof rp->what[0], "%s", what);
	rp->n++;
}

/* A flipped bit in any tensor's payload: verify names exactly that
 * tensor, unpack refuses and leaves nothing behind. Besides random bytes,
 * each payload's last byte (stream padding, which no decoder needs: the
 * output would still be right) must be refused too. */
static void test_bitflip_every_tensor(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *in = path_join(dir, "m.safetensors");
	char *ct = path_join(dir, "m.df11");
	char *bad = path_join(dir, "bad.df11");
	char *out = path_join(dir, "out.safetensors");
	write_st_mixed(in, 3, 100, 130, 8);
	assert_int_equal(df11_pack(in, ct, NULL, NULL), DF11_OK);
	size_t size;
	uint8_t *orig = read_bytes(ct, &size);
	df11_model *m;
	assert_int_equal(df11_model_open(ct, &m), DF11_OK);
	df11_rng rng;
	df11_rng_seed(&rng, 42);
	int tested = 0;
	for (size_t t = 0; t < m->nt; t++) {
		if (m->t[t].d.stored_bytes == 0)
			continue;
		for (int rep = 0; rep < 4; rep++) {
			uint64_t off = (uint64_t)(m->t[t].stored - m->cmap.p) +
				       (rep < 3 ? df11_rng_next(&rng) %
							  m->t[t].d.stored_bytes
						: m->t[t].d.stored_bytes - 1);
			orig[off] ^= (uint8_t)(1u << (df11_rng_next(&rng) % 8));
			write_bytes(bad, orig, size);
			orig[off] = m->cmap.p[off];
			reports rp = {0};
			uint64_t n_bad = 0;
			assert_int_equal(df11_verify(bad, NULL, NULL, collect, &rp,
						     &n_bad), DF11_CHECKSUM);
			assert_int_equal(n_bad, 1);
			assert_string_equal(rp.what[0], m->t[t].name);
			/* The payload check from the mapping, through pread,
			 * and, the container out of the page cache, on the
			 * first tensor's direct read (the others' pages
			 * faulted in). */
			for (int way = 0; way < 3; way++) {
				uint64_t keep = df11_unpack_hash_map_max;
				if (way == 1)
					df11_unpack_hash_map_max = 0;
				if (way == 2)
					evict_file(bad);
				assert_int_equal(df11_unpack(bad, out, NULL, NULL),
						 DF11_CHECKSUM);
				df11_unpack_hash_map_max = keep;
				assert_false(exists(out));
			}
			df11_model *bm;
			size_t idx;
			assert_int_equal(df11_model_open(bad, &bm), DF11_OK);
			assert_int_equal(df11_model_find(bm, m->t[t].name, &idx),
					 DF11_OK);
			void *buf = malloc(m->t[t].d.nbytes + 1);
			assert_int_equal(df11_model_read(bm, idx, buf,
							 m->t[t].d.nbytes),
					 DF11_CHECKSUM);
			free(buf);
			df11_model_close(bm);
			tested++;
		}
	}
	assert_int_equal(tested, 8 * 4); /* every tensor with bytes */
	df11_model_close(m);
	assert_no_temp(dir);
	free(orig);
	free(in);
	free(ct);
	free(bad);
	free(out);
	rm_tree(dir);
	free(dir);
}

/* A sharded checkpoint's container out of the page cache: the first
 * payload of each file is read with O_DIRECT (all three; then two, the
 * third being in the page cache, which is taken from the mapping), the
 * others through the mapping, and the folder comes back byte for byte. */
static void test_unpack_cold(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *in = path_join(dir, "ckpt");
	char *ct = path_join(dir, "ckpt.df11");
	char *out = path_join(dir, "back");
	assert_int_equal(mkdir(in, 0755), 0);
	for (int i = 0; i < 3; i++) {
		char name[64];
		snprintf(name, sizeof name, "model-%05d-of-00003.safetensors",
			 i + 1);
		char *p = path_join(in, name);
		/* Two matrices first (data offsets follow the names), then
		 * the small tensors of other dtypes. */
		write_st_mixed(p, 2, 300, 130, 11 + (uint64_t)i);
		free(p);
	}
	df11_pack_stats st;
	assert_int_equal(df11_pack(in, ct, NULL, &st), DF11_OK);
	df11_model *m;
	assert_int_equal(df11_model_open(ct, &m), DF11_OK);
	assert_int_equal(m->nf, 3);
	for (size_t i = 0; i < 3; i++)
		assert_true(m->t[m->f[i].first].d.compressed &&
			    m->t[m->f[i].first].d.stored_bytes > 16384);
	const df11_mtensor *t2 = &m->t[m->f[2].first];
	uint64_t off = (uint64_t)(t2->stored - m->cmap.p);
	uint64_t len = t2->d.stored_bytes;
	df11_model_close(m);
	int direct = direct_reads_work(ct);
	if (!direct)
		print_message("the file system under %s takes no O_DIRECT "
			      "reads: only the fallback is tested\n", dir);
	for (int cached_one = 0; cached_one < 2; cached_one++) {
		evict_file(ct);
		if (cached_one) {
			/* The third file's first payload, without
			 * read-ahead. */
			int fd = open(ct, O_RDONLY);
			assert_true(fd >= 0);
			posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
			uint8_t *b = malloc(len);
			assert_int_equal(pread(fd, b, len, (off_t)off), (ssize_t)len);
			free(b);
			close(fd);
		}
		uint64_t before = df11_unpack_direct_payloads;
		df11_pack_options po = {.threads = 2, .force = 1};
		assert_int_equal(df11_unpack(ct, out, &po, NULL), DF11_OK);
		for (int i = 0; i < 3; i++) {
			char name[64];
			snprintf(name, sizeof name,
				 "model-%05d-of-00003.safetensors", i + 1);
			assert_same_in(in, out, name);
		}
		assert_int_equal(df11_unpack_direct_payloads - before,
				 direct ? 3 - cached_one : 0);
	}
	assert_no_temp(dir);
	free(in);
	free(ct);
	free(out);
	rm_tree(dir);
	free(dir);
}

/* Flips outside the payloads (file header, safetensors header bytes,
 * directory, trailer) and truncations: open fails cleanly. */
static void test_structure_corruption(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *in = path_join(dir, "m.safetensors");
	char *ct = path_join(dir, "m.df11");
	char *bad = path_join(dir, "bad.df11");
	write_st_mixed(in, 2, 40, 50, 3);
	assert_int_equal(df11_pack(in, ct, NULL, NULL), DF11_OK);
	size_t size;
	uint8_t *c = read_bytes(ct, &size);
	uint64_t dir_off = df11_rd64(c + size - 64 + 8);
	df11_model *m;
	assert_int_equal(df11_model_open(ct, &m), DF11_OK);
	uint64_t hdr_off = (uint64_t)(m->f[0].sect - m->cmap.p);
	df11_model_close(m);
	uint64_t spots[] = {9, 12, 56, hdr_off, hdr_off + 20, dir_off,
			    dir_off + 5, dir_off + 70, size - 64, size - 50,
			    size - 1};
	for (size_t k = 0; k < sizeof spots / sizeof spots[0]; k++) {
		c[spots[k]] ^= 0x10;
		write_bytes(bad, c, size);
		c[spots[k]] ^= 0x10;
		df11_result r = df11_model_open(bad, &m);
		if (r != DF11_CHECKSUM && r != DF11_BAD_DATA)
			fail_msg("flip at %llu: %d (%s)", (unsigned long long)spots[k],
				 r, df11_last_error());
		uint64_t n_bad;
		r = df11_verify(bad, NULL, NULL, NULL, NULL, &n_bad);
		assert_true(r == DF11_CHECKSUM || r == DF11_BAD_DATA);
	}
	/* Without its magic it is read as a safetensors file: refused too. */
	c[0] ^= 0x10;
	write_bytes(bad, c, size);
	c[0] ^= 0x10;
	assert_int_not_equal(df11_model_open(bad, &m), DF11_OK);
	for (size_t cut = 0; cut < size; cut += 1 + cut / 3) {
		write_bytes(bad, c, cut);
		df11_result r = df11_model_open(bad, &m);
		assert_true(r == DF11_BAD_DATA || r == DF11_CHECKSUM);
	}
	free(c);
	free(in);
	free(ct);
	free(bad);
	rm_tree(dir);
	free(dir);
}

/* Directory fields changed and checksums recomputed, as a hostile writer
 * would: the reader's own checks must hold (no crash, no over-read). */
static void test_hostile_directory(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *in = path_join(dir, "m.safetensors");
	char *ct = path_join(dir, "m.df11");
	char *bad = path_join(dir, "bad.df11");
	write_st_mixed(in, 2, 30, 40, 4);
	assert_int_equal(df11_pack(in, ct, NULL, NULL), DF11_OK);
	size_t size;
	uint8_t *c = read_bytes(ct, &size);
	uint8_t *tr = c + size - 64;
	uint64_t dir_off = df11_rd64(tr + 8), dir_size = df11_rd64(tr + 16);
	df11_rng rng;
	df11_rng_seed(&rng, 7);
	int opened = 0;
	for (int it = 0; it < 400; it++) {
		uint8_t *mut = malloc(size);
		memcpy(mut, c, size);
		uint8_t *d = mut + dir_off, *t = mut + size - 64;
		int flips = 1 + (int)(df11_rng_next(&rng) % 3);
		for (int f = 0; f < flips; f++) {
			uint64_t pos = df11_rng_next(&rng) % dir_size;
			uint64_t v = df11_rng_next(&rng);
			/* Small, large and bit-flip values. */
			d[pos] = (v & 3) == 0 ? 0 : (v & 3) == 1 ? 0xff
					      : (uint8_t)(d[pos] ^ (1u << (v >> 8 & 7)));
		}
		df11_wr64(t + 24, df11_xxh3(d, (size_t)dir_size));
		df11_wr64(t + 56, df11_xxh3(t, 56));
		write_bytes(bad, mut, size);
		free(mut);
		df11_model *m;
		if (df11_model_open(bad, &m) == DF11_OK) {
			opened++;
			for (size_t i = 0; i < df11_model_num_tensors(m); i++) {
				df11_tensor_desc ds;
				assert_int_equal(df11_model_tensor(m, i, &ds), DF11_OK);
				if (ds.nbytes > (64u << 20))
					continue;
				void *buf = malloc(ds.nbytes + 1);
				df11_model_read(m, i, buf, ds.nbytes);
				free(buf);
			}
			df11_model_close(m);
		}
	}
	(void)opened;
	free(c);
	free(in);
	free(ct);
	free(bad);
	rm_tree(dir);
	free(dir);
}

/* Offset of tensor record `want` in a container's directory. */
static uint64_t tensor_record(const uint8_t *c, size_t size, uint64_t want)
{
	const uint8_t *tr = c + size - 64;
	uint64_t p = df11_rd64(tr + 8), nf = df11_rd64(tr + 32);
	for (uint64_t i = 0; i < nf; i++)
		p += DF11_CT_FILE_REC + df11_rd32(c + p + 4);
	for (uint64_t i = 0; i < want; i++)
		p += DF11_CT_TENSOR_REC + 8u * c[p + 6] + df11_rd32(c + p + 8);
	return p;
}

/* A payload changed and its stored checksum forged to match (with the
 * directory's and trailer's): the decoded bytes no longer match the
 * original's checksum, so unpack fails and writes nothing. */
static void test_forged_payload(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *in = path_join(dir, "m.safetensors");
	char *ct = path_join(dir, "m.df11");
	char *bad = path_join(dir, "bad.df11");
	char *out = path_join(dir, "out.safetensors");
	write_st_mixed(in, 2, 200, 300, 6);
	assert_int_equal(df11_pack(in, ct, NULL, NULL), DF11_OK);
	size_t size;
	uint8_t *c = read_bytes(ct, &size);
	df11_rng rng;
	df11_rng_seed(&rng, 5);
	int caught = 0;
	for (int it = 0; it < 20; it++) {
		uint64_t ti = it % 2; /* w.0, w.1: the large encoded tensors */
		uint64_t rec = tensor_record(c, size, ti);
		uint8_t *mut = malloc(size);
		memcpy(mut, c, size);
		uint64_t off = df11_rd64(mut + rec + 32), len = df11_rd64(mut + rec + 40);
		/* Past the encoded tensor's own header, into its data. */
		uint64_t at = off + 32 + df11_rng_next(&rng) % (len - 32);
		mut[at] ^= (uint8_t)(1u << (df11_rng_next(&rng) % 8));
		df11_wr64(mut + rec + 56, df11_xxh3(mut + off, (size_t)len));
		uint8_t *tr = mut + size - 64;
		uint64_t d = df11_rd64(tr + 8), dn = df11_rd64(tr + 16);
		df11_wr64(tr + 24, df11_xxh3(mut + d, (size_t)dn));
		df11_wr64(tr + 56, df11_xxh3(tr, 56));
		write_bytes(bad, mut, size);
		free(mut);
		df11_result r = df11_unpack(bad, out, NULL, NULL);
		if (r == DF11_OK) {
			/* A bit the decoder never reads (padding): harmless,
			 * as long as what came out is the original. */
			assert_same_file(in, out);
			remove(out);
			continue;
		}
		caught++;
		if (r != DF11_CHECKSUM && r != DF11_BAD_DATA)
			fail_msg("forged flip at %llu: unpack gave %d (%s)",
				 (unsigned long long)at, r, df11_last_error());
		assert_false(exists(out));
		reports rp = {0};
		uint64_t n_bad;
		r = df11_verify(bad, NULL, NULL, collect, &rp, &n_bad);
		assert_int_equal(r, DF11_CHECKSUM);
		assert_int_equal(n_bad, 1);
		assert_string_equal(rp.what[0], ti ? "w.1" : "w.0");
	}
	assert_true(caught >= 18);
	assert_no_temp(dir);
	free(c);
	free(in);
	free(ct);
	free(bad);
	free(out);
	rm_tree(dir);
	free(dir);
}

/* A header of odd length puts the data area, and so BF16 tensors, at odd
 * addresses in the mapping: the encoder must still see aligned words. */
static void test_odd_alignment(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *in = path_join(dir, "odd.safetensors");
	char *ct = path_join(dir, "odd.df11");
	char *out = path_join(dir, "odd.out");
	uint64_t n = 3000;
	uint16_t *w = malloc(2 * n);
	df11_synth_matrix(9, 30, 100, 0.02f, w);
	const char *json = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[30,100],"
			   "\"data_offsets\":[0,6000]}} ";
	if (strlen(json) % 2 == 0)
		json = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[30,100],"
		       "\"data_offsets\":[0,6000]}}";
	assert_int_equal(strlen(json) % 2, 1);
	write_st(in, json, w, 2 * n);
	df11_pack_stats st;
	assert_int_equal(df11_pack(in, ct, NULL, &st), DF11_OK);
	assert_int_equal(st.n_compressed, 1);
	assert_true(st.bf16_stored < 2 * n);
	assert_int_equal(df11_unpack(ct, out, NULL, NULL), DF11_OK);
	assert_same_file(in, out);
	free(w);
	free(in);
	free(ct);
	free(out);
	rm_tree(dir);
	free(dir);
}

static int cancel_after_two(void *ctx, uint64_t done, uint64_t total)
{
	(void)done;
	(void)total;
	return ++*(int *)ctx >= 2;
}

static void test_cancel(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *in = path_join(dir, "m.safetensors");
	char *ct = path_join(dir, "m.df11");
	char *out = path_join(dir, "o.safetensors");
	write_st_mixed(in, 4, 64, 64, 2);
	int calls = 0;
	df11_pack_options opt = {.progress = cancel_after_two,
				 .progress_ctx = &calls};
	assert_int_equal(df11_pack(in, ct, &opt, NULL), DF11_CANCELLED);
	assert_false(exists(ct));
	assert_int_equal(df11_pack(in, ct, NULL, NULL), DF11_OK);
	calls = 0;
	assert_int_equal(df11_unpack(ct, out, &opt, NULL), DF11_CANCELLED);
	assert_false(exists(out));
	assert_no_temp(dir);
	free(in);
	free(ct);
	free(out);
	rm_tree(dir);
	free(dir);
}

/* df11_model_tensor_header: the original file's header bytes, from the
 * file itself and from the container's stored copy. */
static void test_tensor_header(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *in = path_join(dir, "m.safetensors");
	char *ct = path_join(dir, "m.df11");
	write_st_mixed(in, 2, 30, 20, 9);
	assert_int_equal(df11_pack(in, ct, NULL, NULL), DF11_OK);
	size_t fsize;
	uint8_t *raw = read_bytes(in, &fsize);
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | raw[i];
	const char *paths[2] = {in, ct};
	for (int k = 0; k < 2; k++) {
		df11_model *m;
		assert_int_equal(df11_model_open(paths[k], &m), DF11_OK);
		for (size_t i = 0; i < df11_model_num_tensors(m); i++) {
			const void *h;
			size_t hs;
			assert_int_equal(df11_model_tensor_header(m, i, &h, &hs),
					 DF11_OK);
			assert_int_equal(hs, 8 + n);
			assert_memory_equal(h, raw, hs);
		}
		const void *h;
		size_t hs;
		assert_int_equal(df11_model_tensor_header(
			m, df11_model_num_tensors(m), &h, &hs), DF11_INVALID_ARG);
		assert_int_equal(df11_model_tensor_header(m, 0, NULL, &hs),
				 DF11_INVALID_ARG);
		df11_model_close(m);
	}
	free(raw);
	free(in);
	free(ct);
	rm_tree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tensor_header),
		cmocka_unit_test(test_file_roundtrip),
		cmocka_unit_test(test_folder_roundtrip),
		cmocka_unit_test(test_bitflip_every_tensor),
		cmocka_unit_test(test_unpack_cold),
		cmocka_unit_test(test_structure_corruption),
		cmocka_unit_test(test_hostile_directory),
		cmocka_unit_test(test_forged_payload),
		cmocka_unit_test(test_odd_alignment),
		cmocka_unit_test(test_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
