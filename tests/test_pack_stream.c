/* Containers with tensors larger than one piece, which df11_pack encodes
 * in pieces: each payload must equal df11_encode's bytes for the tensor
 * (so the container is what the whole-tensor path writes), verify and
 * unpack must give the original back, and a cancel midway leaves no
 * output. One tensor sits at an odd address in the input's mapping (read
 * with pread instead). A file of one tensor out of the page cache is
 * read and packed with O_DIRECT, and its container, out of the page
 * cache, unpacked with O_DIRECT reads. A damaged payload is refused even
 * where the output would not show it; verify, which checks these tensors
 * in pieces, finds a byte changed anywhere in the original. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "df11.h"
#include "codec/encode_stream.h"
#include "df11/model_internal.h"
#include "model_testutil.h"
#include "synth/synth.h"

#define PIECE4 (4 * DF11_ES_BLOCK) /* a piece on up to 4 threads */

typedef struct fixture {
	char *dir, *st;
	uint16_t *big, *mid;
	uint64_t n_big, n_mid;
	uint8_t *file;
	size_t file_size;
} fixture;

/* a U8[1], big BF16 (odd address), p U8[1], mid BF16 (even address). */
static int setup(void **state)
{
	fixture *F = calloc(1, sizeof *F);
	F->dir = make_tmpdir();
	F->st = path_join(F->dir, "model.safetensors");
	F->n_big = 2 * PIECE4 + 12345;
	F->n_mid = PIECE4 + 1;
	F->big = malloc(2 * F->n_big);
	F->mid = malloc(2 * F->n_mid);
	df11_synth_matrix(7, 1, F->n_big, 0.02f, F->big);
	df11_synth_matrix(8, 1, F->n_mid, 0.05f, F->mid);
	uint64_t e1 = 1 + 2 * F->n_big, e2 = e1 + 1, e3 = e2 + 2 * F->n_mid;
	char json[1024];
	int len = snprintf(json, sizeof json,
		"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
		"\"big\":{\"dtype\":\"BF16\",\"shape\":[%llu],\"data_offsets\":[1,%llu]},"
		"\"p\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%llu,%llu]},"
		"\"mid\":{\"dtype\":\"BF16\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}}",
		(unsigned long long)F->n_big, (unsigned long long)e1,
		(unsigned long long)e1, (unsigned long long)e2,
		(unsigned long long)F->n_mid, (unsigned long long)e2,
		(unsigned long long)e3);
	while (len % 8) /* data area 8-aligned: big's address is odd */
		json[len++] = ' ';
	json[len] = 0;
	uint8_t *data = malloc(e3);
	data[0] = 0x11;
	memcpy(data + 1, F->big, 2 * F->n_big);
	data[e1] = 0x22;
	memcpy(data + e2, F->mid, 2 * F->n_mid);
	write_st(F->st, json, data, e3);
	free(data);
	F->file = read_bytes(F->st, &F->file_size);
	*state = F;
	return 0;
}

static int teardown(void **state)
{
	fixture *F = *state;
	rm_tree(F->dir);
	free(F->dir);
	free(F->st);
	free(F->big);
	free(F->mid);
	free(F->file);
	free(F);
	return 0;
}

static void check_payload(df11_model *m, const char *name, const uint16_t *w,
			  uint64_t n)
{
	size_t i, size, ref_size, cap = df11_encode_bound(n);
	const void *enc;
	assert_int_equal(df11_model_find(m, name, &i), DF11_OK);
	assert_int_equal(df11_model_encoded(m, i, &enc, &size), DF11_OK);
	uint8_t *ref = malloc(cap);
	df11_encode_options o = {.threads = 2};
	assert_int_equal(df11_encode(w, n, &o, ref, cap, &ref_size), DF11_OK);
	assert_int_equal(size, ref_size);
	assert_memory_equal(enc, ref, size);
	free(ref);
}

static void pack_and_check(fixture *F, int threads)
{
	char *out = path_join(F->dir, "m.df11");
	char *back = path_join(F->dir, "back.safetensors");
	df11_pack_options po = {.threads = threads, .force = 1};
	df11_pack_stats st;
	assert_int_equal(df11_pack(F->st, out, &po, &st), DF11_OK);
	assert_int_equal(st.n_compressed, 2);
	df11_model *m;
	assert_int_equal(df11_model_open(out, &m), DF11_OK);
	check_payload(m, "big", F->big, F->n_big);
	check_payload(m, "mid", F->mid, F->n_mid);
	df11_model_close(m);
	uint64_t n_bad = 1;
	assert_int_equal(df11_verify(out, F->st, &po, NULL, NULL, &n_bad), DF11_OK);
	assert_int_equal(n_bad, 0);
	assert_int_equal(df11_unpack(out, back, &po, NULL), DF11_OK);
	size_t n;
	uint8_t *got = read_bytes(back, &n);
	assert_int_equal(n, F->file_size);
	assert_memory_equal(got, F->file, n);
	free(got);
	unlink(back);
	unlink(out);
	free(back);
	free(out);
}

static void test_threads_1(void **state) { pack_and_check(*state, 1); }
static void test_threads_2(void **state) { pack_and_check(*state, 2); }
static void test_threads_5(void **state) { pack_and_check(*state, 5); }

/* One tensor, out of the page cache: df11_pack reads it with O_DIRECT
 * (its data area starts 8 + 70 bytes into the file, not on a block), with
 * the size limit lowered, and writes the container with O_DIRECT too if
 * direct_write, else through the page cache. */
static void uncached(fixture *F, int threads, int direct_write)
{
	char *in = path_join(F->dir, "one.safetensors");
	char *out = path_join(F->dir, "one.df11");
	char *back = path_join(F->dir, "one.back");
	char json[128];
	snprintf(json, sizeof json, "{\"mid\":{\"dtype\":\"BF16\",\"shape\":"
		 "[%llu],\"data_offsets\":[0,%llu]}}",
		 (unsigned long long)F->n_mid, (unsigned long long)(2 * F->n_mid));
	write_st(in, json, F->mid, 2 * F->n_mid);
	evict_file(in);
	df11_pack_options po = {.threads = threads, .force = 1};
	uint64_t keep_r = df11_pack_direct_read_min;
	uint64_t keep_w = df11_pack_direct_write_min;
	df11_pack_direct_read_min = 0;
	df11_pack_direct_write_min = direct_write ? 0 : UINT64_MAX;
	assert_int_equal(df11_pack(in, out, &po, NULL), DF11_OK);
	df11_pack_direct_read_min = keep_r;
	df11_pack_direct_write_min = keep_w;
	df11_model *m;
	assert_int_equal(df11_model_open(out, &m), DF11_OK);
	check_payload(m, "mid", F->mid, F->n_mid);
	df11_model_close(m);
	/* And back from a container out of the page cache: its payload is
	 * read with O_DIRECT too. */
	evict_file(out);
	uint64_t before = df11_unpack_direct_payloads;
	assert_int_equal(df11_unpack(out, back, &po, NULL), DF11_OK);
	assert_int_equal(df11_unpack_direct_payloads - before,
			 direct_reads_work(out) ? 1 : 0);
	size_t n, n_in;
	uint8_t *got = read_bytes(back, &n), *want = read_bytes(in, &n_in);
	assert_int_equal(n, n_in);
	assert_memory_equal(got, want, n);
	free(got);
	free(want);
	unlink(back);
	unlink(out);
	unlink(in);
	free(back);
	free(out);
	free(in);
}

static void test_uncached_2(void **state) { uncached(*state, 2, 1); }
static void test_uncached_3(void **state) { uncached(*state, 3, 1); }
static void test_uncached_read(void **state) { uncached(*state, 2, 0); }

/* A flip in the last byte of a payload decoded in many pieces (stream
 * padding: the output would still be right) is refused by unpack, whether
 * the payload is hashed as its pieces are decoded or on its own thread,
 * and leaves no output. */
static void test_padding_flip(void **state)
{
	fixture *F = *state;
	char *out = path_join(F->dir, "f.df11");
	char *bad = path_join(F->dir, "bad.df11");
	char *back = path_join(F->dir, "f.back");
	df11_pack_options po = {.threads = 2, .force = 1};
	assert_int_equal(df11_pack(F->st, out, &po, NULL), DF11_OK);
	df11_model *m;
	size_t i, size;
	assert_int_equal(df11_model_open(out, &m), DF11_OK);
	assert_int_equal(df11_model_find(m, "big", &i), DF11_OK);
	uint64_t last = (uint64_t)(m->t[i].stored - m->cmap.p) +
			m->t[i].d.stored_bytes - 1;
	assert_true(m->t[i].d.stored_bytes <= df11_unpack_hash_map_max);
	df11_model_close(m);
	uint8_t *c = read_bytes(out, &size);
	c[last] ^= 0x01;
	write_bytes(bad, c, size);
	for (int way = 0; way < 2; way++) {
		uint64_t keep = df11_unpack_hash_map_max;
		if (way == 1)
			df11_unpack_hash_map_max = 0;
		assert_int_equal(df11_unpack(bad, back, &po, NULL), DF11_CHECKSUM);
		df11_unpack_hash_map_max = keep;
		assert_non_null(strstr(df11_last_error(), "big: stored bytes differ"));
		assert_int_not_equal(access(back, F_OK), 0);
	}
	free(c);
	unlink(bad);
	unlink(out);
	free(bad);
	free(back);
	free(out);
}

static void collect_name(void *ctx, const char *what, df11_result r,
			 const char *message)
{
	(void)r;
	(void)message;
	snprintf(ctx, 64, "%s", what);
}

/* Verify against an original changed in one byte, far into a tensor that
 * it checks in pieces: that tensor, and only it, is reported. */
static void test_verify_changed_original(void **state)
{
	fixture *F = *state;
	char *out = path_join(F->dir, "v.df11");
	char *changed = path_join(F->dir, "changed.safetensors");
	df11_pack_options po = {.threads = 2, .force = 1};
	assert_int_equal(df11_pack(F->st, out, &po, NULL), DF11_OK);
	uint64_t data = 8 + df11_rd64(F->file);
	const struct {
		const char *name;
		uint64_t at; /* in the file */
	} spots[] = {
		{"big", data + 1 + 2 * (3 * DF11_ES_BLOCK + 5)},
		{"big", data + 2 * F->n_big},
		{"mid", F->file_size - 1},
	};
	for (size_t k = 0; k < sizeof spots / sizeof spots[0]; k++) {
		F->file[spots[k].at] ^= 0x40;
		write_bytes(changed, F->file, F->file_size);
		F->file[spots[k].at] ^= 0x40;
		char who[64] = "";
		uint64_t n_bad = 0;
		assert_int_equal(df11_verify(out, changed, &po, collect_name, who,
					     &n_bad), DF11_CHECKSUM);
		assert_int_equal(n_bad, 1);
		assert_string_equal(who, spots[k].name);
	}
	unlink(changed);
	unlink(out);
	free(changed);
	free(out);
}

static int calls;
static int stop_at_third(void *ctx, uint64_t done, uint64_t total)
{
	(void)ctx;
	assert_true(done <= total);
	return ++calls == 3;
}

/* Cancelled inside a tensor's pieces: DF11_CANCELLED, no output. */
static void test_cancel(void **state)
{
	fixture *F = *state;
	char *out = path_join(F->dir, "c.df11");
	df11_pack_options po = {.threads = 2, .progress = stop_at_third};
	calls = 0;
	assert_int_equal(df11_pack(F->st, out, &po, NULL), DF11_CANCELLED);
	assert_int_equal(calls, 3);
	assert_int_not_equal(access(out, F_OK), 0);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_1),
		cmocka_unit_test(test_threads_2),
		cmocka_unit_test(test_threads_5),
		cmocka_unit_test(test_uncached_2),
		cmocka_unit_test(test_uncached_3),
		cmocka_unit_test(test_uncached_read),
		cmocka_unit_test(test_padding_flip),
		cmocka_unit_test(test_verify_changed_original),
		cmocka_unit_test(test_cancel),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
