/*
 * Hostile and corrupted checkpoint files: safetensors headers
 * that lie (length 2^60, shapes whose product overflows, offsets past the
 * end, overlapping tensors), containers whose directory lies (payloads
 * outside the file or overlapping, element counts the payload cannot
 * hold, record counts the directory cannot hold), a container cut at every
 * section boundary, and every single-bit flip in a small container.
 *
 * The rules checked, for every case: opening refuses (the model handle
 * stays NULL) or every read gives back the exact original bytes; verify
 * reports every flip that changes decoded data; unpack refuses (leaving no
 * output) or rebuilds the original file byte for byte; and no call
 * allocates more at once than the file's size justifies.
 */
#include <dirent.h>
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
#include "fuzz/container_fix.h"
#include "tests/alloc_track.h"
#include "tests/hostile_util.h"
#include "tests/model_testutil.h"
#include "tests/testutil.h"

/* Largest single allocation a file of `size` bytes may cause: tables and
 * decoder state, plus the decoded size of what it holds (a BF16 element
 * costs at least one stored byte, so at most twice the file). */
#define ALLOC_SLACK (256u * 1024u)
static size_t alloc_bound(size_t size)
{
	return ALLOC_SLACK + 2 * size;
}

static int sanitized(void)
{
	const char *s = getenv("DF11_SANITIZED");
	return s && *s && strcmp(s, "0") != 0;
}

/* Number of entries in a folder, but "." and "..". */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* Opens path, which must be refused; checks the allocation bound. */
static void expect_open_refused(const char *path, size_t size,
				const char *what)
{
	df11_model *m = (df11_model *)1;
	alloc_track_reset();
	df11_result r = df11_model_open(path, &m);
	if (r == DF11_OK)
		fail_msg("%s: opened", what);
	if (m != NULL)
		fail_msg("%s: failed open left a model handle", what);
	if (alloc_track_largest() > alloc_bound(size))
		fail_msg("%s: %zu-byte file made open allocate %zu bytes", what,
			 size, alloc_track_largest());
}

/* -------------------------------------------------------- safetensors */

static size_t st_file(uint8_t *buf, const char *json, size_t data_size)
{
	size_t n = strlen(json);
	df11_wr64(buf, n);
	memcpy(buf + 8, json, n);
	memset(buf + 8 + n, 0x3c, data_size);
	return 8 + n + data_size;
}

static void test_safetensors_hostile(void **state)
{
	(void)state;
	static const struct {
		const char *what, *json;
		size_t data;
	} cases[] = {
		{"shape product overflows u64", "{\"a\":{\"dtype\":\"U8\",\"shape\":"
		 "[4294967296,4294967296,2],\"data_offsets\":[0,4]}}", 4},
		{"shape product overflows to 0", "{\"a\":{\"dtype\":\"U8\",\"shape\":"
		 "[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0},
		{"shape x dtype size overflows", "{\"a\":{\"dtype\":\"F64\",\"shape\":"
		 "[2305843009213693952,2],\"data_offsets\":[0,0]}}", 0},
		{"huge shape, tiny data", "{\"a\":{\"dtype\":\"BF16\",\"shape\":"
		 "[1099511627776],\"data_offsets\":[0,2199023255552]}}", 16},
		{"offsets past the end", "{\"a\":{\"dtype\":\"U8\",\"shape\":[100],"
		 "\"data_offsets\":[0,100]}}", 10},
		{"offset 2^64 - 1", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
		 "\"data_offsets\":[18446744073709551614,18446744073709551615]}}", 1},
		{"offsets reversed", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],"
		 "\"data_offsets\":[4,0]}}", 4},
		{"overlapping tensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],"
		 "\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"U8\",\"shape\":[4],"
		 "\"data_offsets\":[2,6]}}", 6},
		{"same bytes for two tensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],"
		 "\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"U8\",\"shape\":[4],"
		 "\"data_offsets\":[0,4]}}", 4},
		{"size not matching shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
		 "\"data_offsets\":[0,7]}}", 7},
		{"hole between tensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],"
		 "\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],"
		 "\"data_offsets\":[3,5]}}", 5},
		{"bytes after the last tensor", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],"
		 "\"data_offsets\":[0,2]}}", 3},
		{"duplicate tensor name", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
		 "\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
		 "\"data_offsets\":[1,2]}}", 2},
		{"nine dimensions", "{\"a\":{\"dtype\":\"U8\",\"shape\":"
		 "[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1},
		{"negative dimension", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],"
		 "\"data_offsets\":[0,1]}}", 1},
		{"fractional offset", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
		 "\"data_offsets\":[0,1.5]}}", 2},
		{"unknown dtype", "{\"a\":{\"dtype\":\"Q4_K\",\"shape\":[1],"
		 "\"data_offsets\":[0,1]}}", 1},
		{"truncated JSON", "{\"a\":{\"dtype\":\"U8\"", 0},
		{"not an object", "[1,2,3]", 0},
	};
	char *dir = make_tmpdir();
	char *path = path_join(dir, "h.safetensors");
	char *out = path_join(dir, "out.df11");
	static uint8_t buf[4096];
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		size_t n = st_file(buf, cases[k].json, cases[k].data);
		write_bytes(path, buf, n);
		expect_open_refused(path, n, cases[k].what);
		/* Packing refuses too, and leaves nothing behind. */
		df11_pack_options opt = {.threads = 1};
		if (df11_pack(path, out, &opt, NULL) == DF11_OK)
			fail_msg("%s: packed", cases[k].what);
		assert_int_equal(count_entries(dir), 1);
	}
	/* Length fields that claim more than the file holds. */
	const uint64_t lens[] = {(uint64_t)1 << 60, UINT64_MAX, (uint64_t)1 << 32,
				 100, 9};
	for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
		memset(buf, ' ', 64);
		df11_wr64(buf, lens[k]);
		buf[8] = '{';
		buf[9] = '}';
		write_bytes(path, buf, 10);
		expect_open_refused(path, 10, "header length past the file");
	}
	for (size_t n = 0; n < 8; n++) {
		write_bytes(path, buf, n);
		expect_open_refused(path, n, "shorter than the length field");
	}
	free(out);
	free(path);
	rm_tree(dir);
	free(dir);
}

/* ------------------------------------------------ hand-built containers */

typedef struct sample_ct {
	uint16_t w[512];       /* BF16 [8, 64] */
	uint8_t *enc;          /* its df11 encoding */
	size_t enc_size;
	float b[4];            /* F32 [4] */
	char json[512];
	ct_tensor t[2];
} sample_ct;

static void make_sample_ct(sample_ct *s)
{
	df11_synth_matrix(77, 8, 64, 0.02f, s->w);
	s->enc = encode_alloc(s->w, 512, NULL, &s->enc_size);
	for (int i = 0; i < 4; i++)
		s->b[i] = 0.5f * (float)i;
	snprintf(s->json, sizeof s->json,
		 "{\"w\":{\"dtype\":\"BF16\",\"shape\":[8,64],\"data_offsets\":"
		 "[0,1024]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],"
		 "\"data_offsets\":[1024,1040]}}");
	s->t[0] = (ct_tensor){.name = "w", .dtype = DF11_DTYPE_BF16, .ndim = 2,
			      .shape = {8, 64}, .codec = 1, .data = s->w,
			      .nbytes = 1024, .payload = s->enc,
			      .payload_size = s->enc_size};
	s->t[1] = (ct_tensor){.name = "b", .dtype = DF11_DTYPE_F32, .ndim = 1,
			      .shape = {4}, .codec = 0, .data = s->b,
			      .nbytes = 16, .payload = s->b, .payload_size = 16};
}

/* Opens the container in `path`: it must be refused, or open and give
 * back exactly the sample's bytes (or refuse the read), all within the
 * allocation bound; df11_verify must then agree. */
static void check_ct(const char *path, size_t size, const sample_ct *s,
		     int expect_refused, const char *what)
{
	df11_model *m = NULL;
	alloc_track_reset();
	df11_result r = df11_model_open(path, &m);
	if (expect_refused && r == DF11_OK)
		fail_msg("%s: opened", what);
	int all_ok = r == DF11_OK;
	for (size_t i = 0; r == DF11_OK && i < df11_model_num_tensors(m); i++) {
		df11_tensor_desc d;
		assert_int_equal(df11_model_tensor(m, i, &d), DF11_OK);
		if (d.nbytes > alloc_bound(size))
			fail_msg("%s: tensor %s claims %llu bytes in a %zu-byte "
				 "file", what, d.name,
				 (unsigned long long)d.nbytes, size);
		const ct_tensor *want = !strcmp(d.name, "w") ? &s->t[0] : &s->t[1];
		uint8_t *buf = malloc(d.nbytes + 1);
		assert_non_null(buf);
		df11_result rr = df11_model_read(m, i, buf, (size_t)d.nbytes);
		if (rr == DF11_OK && (d.nbytes != want->nbytes ||
				      memcmp(buf, want->data, want->nbytes)))
			fail_msg("%s: tensor %s read back wrong bytes", what,
				 d.name);
		all_ok &= rr == DF11_OK;
		free(buf);
	}
	df11_model_close(m);
	uint64_t n_bad = 0;
	df11_result rv = df11_verify(path, NULL, NULL, NULL, NULL, &n_bad);
	if (rv == DF11_OK && !all_ok)
		fail_msg("%s: verify accepts a container that fails to read",
			 what);
	if (alloc_track_largest() > alloc_bound(size))
		fail_msg("%s: %zu-byte container made the library allocate %zu "
			 "bytes at once", what, size, alloc_track_largest());
}

static void test_container_directory_lies(void **state)
{
	(void)state;
	sample_ct s;
	make_sample_ct(&s);
	char *dir = make_tmpdir();
	char *path = path_join(dir, "c.df11");
	size_t size;
	uint8_t *c = ct_build(s.json, 0, s.t, 2, &size);
	write_bytes(path, c, size);
	/* The well-formed one opens and reads back exactly. */
	df11_model *m;
	assert_int_equal(df11_model_open(path, &m), DF11_OK);
	df11_model_close(m);
	check_ct(path, size, &s, 0, "well-formed");
	assert_int_equal(df11_verify(path, NULL, NULL, NULL, NULL, NULL), DF11_OK);
	free(c);

	/* Each variant: one directory field lies (checksums recomputed). */
	const struct {
		const char *what;
		int tensor;
		uint64_t off, len, nbytes;
	} lies[] = {
		{"payload offset past the end", 0, (uint64_t)1 << 40, 0, 0},
		{"payload offset 2^64 - 256", 0, UINT64_MAX - 255, 0, 0},
		{"payload length past the end", 0, 0, (uint64_t)1 << 40, 0},
		{"payload length 2^64 - 1", 1, 0, UINT64_MAX, 0},
		{"payload inside the file header", 1, 0 + 256 - 256, 0, 0},
		{"payload misaligned", 0, 256 + 8, 0, 0},
		{"payload overlapping the directory", 1, 0, 4096, 0},
		{"stored size not the original size", 1, 0, 12, 0},
		{"original size not the shape's", 1, 0, 0, 20},
	};
	for (size_t k = 0; k < sizeof lies / sizeof lies[0]; k++) {
		sample_ct v = s;
		ct_tensor *t = &v.t[lies[k].tensor];
		t->rec_off = lies[k].off;
		t->rec_len = lies[k].len;
		t->rec_nbytes = lies[k].nbytes;
		if (lies[k].off == 0 && lies[k].len == 0 && lies[k].nbytes == 0)
			t->rec_off = 1; /* "inside the file header" */
		c = ct_build(v.json, 0, v.t, 2, &size);
		write_bytes(path, c, size);
		check_ct(path, size, &s, 1, lies[k].what);
		free(c);
	}

	/* Overlapping tensors: the F32 record points at the BF16 payload.
	 * Its stored checksum then matches (recomputed), but the bytes are
	 * not the F32 tensor's: reading it must fail, not return them. */
	{
		sample_ct v = s;
		c = ct_build(v.json, 0, v.t, 2, &size);
		/* Find w's payload offset from its record, give it to b. */
		uint64_t dir_off = df11_rd64(c + size - 64 + 8);
		uint8_t *rec_w = c + dir_off + 48 + strlen("model.safetensors");
		uint8_t *rec_b = rec_w + 64 + 16 + 1;
		df11_wr64(rec_b + 32, df11_rd64(rec_w + 32));
		df11_ct_fix_checksums(c, size);
		write_bytes(path, c, size);
		check_ct(path, size, &s, 0, "overlapping payloads");
		assert_int_not_equal(df11_verify(path, NULL, NULL, NULL, NULL,
						 NULL), DF11_OK);
		free(c);
	}

	/* A compressed tensor whose shape claims 2^40 elements, with a
	 * consistent safetensors header and original size, but a payload of
	 * a few hundred bytes: a program sizing buffers from the directory
	 * would allocate 2 TiB. */
	{
		sample_ct v = s;
		snprintf(v.json, sizeof v.json,
			 "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1099511627776],"
			 "\"data_offsets\":[0,2199023255552]}}");
		v.t[0].ndim = 1;
		v.t[0].shape[0] = (uint64_t)1 << 40;
		v.t[0].nbytes = (uint64_t)1 << 41;
		v.t[0].data = NULL;
		c = ct_build(v.json, 0, v.t, 1, &size);
		write_bytes(path, c, size);
		expect_open_refused(path, size, "2^40 elements in a small payload");
		uint64_t n_bad = 0;
		alloc_track_reset();
		assert_int_not_equal(df11_verify(path, NULL, NULL, NULL, NULL,
						 &n_bad), DF11_OK);
		assert_true(alloc_track_largest() <= alloc_bound(size));
		free(c);
	}

	/* Shapes whose product overflows, in the tensor record. */
	{
		sample_ct v = s;
		v.t[1].shape[0] = (uint64_t)1 << 62;
		v.t[1].ndim = 2;
		v.t[1].shape[1] = 8;
		c = ct_build(v.json, 0, v.t, 2, &size);
		write_bytes(path, c, size);
		expect_open_refused(path, size, "record shape product overflows");
		free(c);
	}
	free(s.enc);
	free(path);
	rm_tree(dir);
	free(dir);
}

/* --------------------------------------------- packed containers, cut */

/* A small one-file checkpoint and its container, made by df11_pack. */
typedef struct packed {
	char *dir, *src, *ct;
	uint8_t *orig, *c;
	size_t orig_size, size;
} packed;

static void make_packed(packed *p, uint64_t rows)
{
	p->dir = make_tmpdir();
	p->src = path_join(p->dir, "m.safetensors");
	p->ct = path_join(p->dir, "m.df11");
	write_st_mixed(p->src, 1, rows, 64, 5);
	df11_pack_options opt = {.threads = 1};
	assert_int_equal(df11_pack(p->src, p->ct, &opt, NULL), DF11_OK);
	p->orig = read_bytes(p->src, &p->orig_size);
	p->c = read_bytes(p->ct, &p->size);
}

static void free_packed(packed *p)
{
	free(p->orig);
	free(p->c);
	free(p->src);
	free(p->ct);
	rm_tree(p->dir);
	free(p->dir);
}

/* Section boundaries of a container, from its directory. */
static size_t boundaries(const uint8_t *c, size_t size, uint64_t *out,
			 size_t cap)
{
	size_t n = 0;
	const uint8_t *tr = c + size - 64;
	uint64_t dir_off = df11_rd64(tr + 8), dir_size = df11_rd64(tr + 16);
	uint64_t nf = df11_rd64(tr + 32), nt = df11_rd64(tr + 40);
	out[n++] = 8;
	out[n++] = 64;
	out[n++] = 256;
	const uint8_t *p = c + dir_off;
	for (uint64_t i = 0; i < nf + nt && n + 2 < cap; i++) {
		int file = i < nf;
		uint64_t off = df11_rd64(p + (file ? 16 : 32));
		uint64_t len = df11_rd64(p + (file ? 24 : 40));
		out[n++] = off;
		out[n++] = off + len;
		p += (file ? 48 : 64 + 8 * (uint64_t)p[6]) +
		     df11_rd32(p + (file ? 4 : 8));
	}
	if (n + 4 <= cap) {
		out[n++] = dir_off;
		out[n++] = dir_off + dir_size;
		out[n++] = size - 64;
		out[n++] = size - 1;
	}
	(void)dir_size;
	return n;
}

static void test_container_cut_at_every_section_boundary(void **state)
{
	(void)state;
	packed p;
	make_packed(&p, 16);
	uint64_t b[256];
	size_t nb = boundaries(p.c, p.size, b, 256);
	assert_true(nb > 10);
	char *cut = path_join(p.dir, "cut.df11");
	char *out = path_join(p.dir, "out.safetensors");
	for (size_t k = 0; k < nb; k++) {
		assert_true(b[k] < p.size);
		write_bytes(cut, p.c, (size_t)b[k]);
		char what[64];
		snprintf(what, sizeof what, "cut at byte %llu",
			 (unsigned long long)b[k]);
		expect_open_refused(cut, (size_t)b[k], what);
		assert_int_not_equal(df11_verify(cut, NULL, NULL, NULL, NULL, NULL),
				     DF11_OK);
		df11_pack_options opt = {.threads = 1};
		assert_int_not_equal(df11_unpack(cut, out, &opt, NULL), DF11_OK);
		assert_int_equal(access(out, F_OK), -1);
	}
	/* And at every 64th byte in between. */
	for (size_t len = 0; len < p.size; len += 64) {
		write_bytes(cut, p.c, len);
		expect_open_refused(cut, len, "cut");
	}
	/* Three entries: the source, the container, the cut file. */
	assert_int_equal(count_entries(p.dir), 3);
	free(cut);
	free(out);
	free_packed(&p);
}

/* Every single-bit flip of a small container. The oracle reads each
 * tensor with the checksum checks off (df11_mtensor_read(..., 0)): if any
 * tensor, header or carried file then differs from the original, the flip
 * changed decoded data, and df11_verify must report it. Whatever the
 * flip, df11_model_read gives the exact original or refuses, and
 * df11_unpack rebuilds the exact original file or refuses and leaves
 * nothing. Under sanitizers (DF11_SANITIZED=1) every 5th bit is tried. */
static void test_container_every_bit_flip(void **state)
{
	(void)state;
	packed p;
	make_packed(&p, 4);
	df11_model *orig;
	assert_int_equal(df11_model_open(p.src, &orig), DF11_OK);
	char *flip = path_join(p.dir, "flip.df11");
	char *out = path_join(p.dir, "out.safetensors");
	uint8_t *c = malloc(p.size);
	assert_non_null(c);
	memcpy(c, p.c, p.size);
	static uint8_t buf[1 << 16];
	unsigned step = sanitized() ? 5 : 1;
	int n_flips = 0, n_changed = 0, n_refused_open = 0, n_verify = 0;
	int n_unpack_ok = 0;
	for (uint64_t bit = 0; bit < 8 * (uint64_t)p.size; bit += step) {
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		write_bytes(flip, c, p.size);
		n_flips++;
		char what[64];
		snprintf(what, sizeof what, "flip of bit %llu",
			 (unsigned long long)bit);

		/* The oracle: does the flip change what decodes? */
		int changed = 0;
		df11_model *m = NULL;
		alloc_track_reset();
		if (df11_model_open(flip, &m) != DF11_OK) {
			changed = 1;
			n_refused_open++;
		} else if (df11_model_num_tensors(m) !=
			   df11_model_num_tensors(orig)) {
			changed = 1;
		} else {
			for (size_t i = 0; i < df11_model_num_tensors(m); i++) {
				df11_tensor_desc d, od;
				df11_model_tensor(m, i, &d);
				df11_model_tensor(orig, i, &od);
				assert_true(d.nbytes <= sizeof buf);
				if (strcmp(d.name, od.name) || d.nbytes != od.nbytes ||
				    df11_mtensor_read(m, m->view[i], buf,
						      d.nbytes, 0) != DF11_OK ||
				    memcmp(buf, orig->t[orig->view[i]].stored,
					   d.nbytes)) {
					changed = 1;
				}
				/* The checked read: exact or refused. */
				df11_result r = df11_model_read(m, i, buf,
								(size_t)d.nbytes);
				if (r == DF11_OK &&
				    (d.nbytes != od.nbytes ||
				     memcmp(buf, orig->t[orig->view[i]].stored,
					    d.nbytes)))
					fail_msg("%s: model_read returned wrong "
						 "bytes for %s", what, d.name);
			}
			if (m->f[0].sect_size != orig->f[0].sect_size ||
			    memcmp(m->f[0].sect, orig->f[0].sect,
				   (size_t)orig->f[0].sect_size) ||
			    m->f[0].orig_size != p.orig_size)
				changed = 1;
		}
		df11_model_close(m);
		n_changed += changed;

		df11_result rv = df11_verify(flip, NULL, NULL, NULL, NULL, NULL);
		if (changed && rv == DF11_OK)
			fail_msg("%s changes the decoded checkpoint, verify "
				 "passed it", what);
		n_verify += rv != DF11_OK;

		df11_pack_options opt = {.threads = 1};
		df11_result ru = df11_unpack(flip, out, &opt, NULL);
		if (ru == DF11_OK) {
			size_t n;
			uint8_t *got = read_bytes(out, &n);
			if (n != p.orig_size || memcmp(got, p.orig, n))
				fail_msg("%s: unpack wrote other bytes than the "
					 "original", what);
			free(got);
			unlink(out);
			n_unpack_ok++;
		} else {
			assert_int_equal(access(out, F_OK), -1);
		}
		if (alloc_track_largest() > alloc_bound(p.size))
			fail_msg("%s: allocated %zu bytes at once", what,
				 alloc_track_largest());
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* Only the source, the container and the flipped file are left. */
	assert_int_equal(count_entries(p.dir), 3);
	print_message("%d flips of a %zu-byte container: %d refused at open, "
		      "%d change decoded data, %d reported by verify, %d "
		      "unpacked to the exact original\n", n_flips, p.size,
		      n_refused_open, n_changed, n_verify, n_unpack_ok);
	assert_true(n_changed > 0 && n_verify >= n_changed);
	df11_model_close(orig);
	free(c);
	free(flip);
	free(out);
	free_packed(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_safetensors_hostile),
		cmocka_unit_test(test_container_directory_lies),
		cmocka_unit_test(test_container_cut_at_every_section_boundary),
		cmocka_unit_test(test_container_every_bit_flip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
