/*
 * One test per bug found by the fuzzers (fuzz/) or the hostile-input tests,
 * each named after what it caught, as libdeflate keeps a test per class of
 * bug. A test here reproduces the failing input exactly and states the
 * expected behaviour; the fix lives in its own "fix: ..." commit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "df11.h"
#include "codec/format.h"
#include "df11/safetensors.h"
#include "synth/synth.h"
#include "fuzz/container_fix.h"
#include "tests/alloc_track.h"
#include "tests/hostile_util.h"
#include "tests/model_testutil.h"
#include "tests/testutil.h"

/* Caught by fuzz_roundtrip (seed roundtrip/words_w16_b4_l15 with its block
 * byte set to 0): window_log2 15 or 16 with block_log2 0 ("default") made
 * df11_encode fail with "block_log2 6 out of range", a value the caller
 * never chose. The default now shrinks so that window_log2 + block_log2
 * stays within 20. */
static void test_default_block_log2_with_large_windows(void **state)
{
	(void)state;
	uint64_t n = 5000;
	uint16_t *v = malloc(n * 2);
	assert_non_null(v);
	df11_synth_matrix(1, 1, n, 0.02f, v);
	for (int w = 6; w <= 16; w++) {
		df11_encode_options opt = {.window_log2 = w};
		size_t size;
		uint8_t *enc = encode_alloc(v, n, &opt, &size);
		df11_tensor_info info;
		assert_int_equal(df11_inspect(enc, size, &info), DF11_OK);
		assert_int_equal(info.codec, DF11_CODEC_HUFFMAN);
		assert_int_equal(info.window_log2, w);
		assert_int_equal(info.block_log2, w + 6 <= 20 ? 6 : 20 - w);
		free(enc);
		roundtrip(v, n, &opt);
	}
	free(v);
}

/* Caught by the allocation bound of tests/test_hostile_codec.c (the rule
 * "a hostile file never makes a program allocate more than its contents
 * justify"): the fast decoder sized its per-thread scratch from the
 * header's window_log2 + block_log2 alone, so a 300-element tensor of
 * about 500 bytes declaring 2^20-bit blocks made a 16-thread decoder
 * allocate 16 MiB. A block never holds more codes than the tensor has
 * elements; the scratch is now bounded by that too. */
static void test_decoder_scratch_bounded_by_tensor_size(void **state)
{
	(void)state;
	uint16_t v[300];
	df11_synth_matrix(2, 1, 300, 0.02f, v);
	df11_encode_options opt = {.window_log2 = 16, .block_log2 = 4};
	size_t size;
	uint8_t *enc = encode_alloc(v, 300, &opt, &size);
	df11_tensor_info info;
	assert_int_equal(df11_inspect(enc, size, &info), DF11_OK);
	assert_int_equal(info.codec, DF11_CODEC_HUFFMAN);
	uint16_t out[300];
	df11_decoder *d = df11_decoder_new(16);
	assert_non_null(d);
	alloc_track_reset();
	assert_int_equal(df11_decode(d, enc, size, out, 300), DF11_OK);
	assert_memory_equal(out, v, sizeof v);
	/* The decode job (about 41 KB) plus scratch of ~300 bytes/thread. */
	size_t peak = alloc_track_peak();
	if (peak > 64 * 1024)
		fail_msg("%zu-byte tensor: decoder allocated %zu bytes", size,
			 peak);
	df11_decoder_free(d);
	free(enc);
}

/* Caught by fuzz_safetensors (the 5-byte seed safetensors/short, parsed
 * as the head of a longer file): df11_st_parse read the 8-byte length
 * field whenever the file had 8 bytes, even when the buffer held fewer
 * (avail < 8), reading past the caller's buffer. The container reader
 * passes a section size from the directory as avail, so a hostile
 * container could trigger it. */
static void test_st_parse_short_buffer(void **state)
{
	(void)state;
	const uint8_t head[5] = {2, 0, 0, 0, 0};
	for (size_t avail = 0; avail < 5; avail++) {
		guarded g = guard(head, avail);
		df11_st_header h;
		df11_result r = df11_st_parse(g.p, avail, 1000, "short", &h);
		assert_int_not_equal(r, DF11_OK);
		assert_int_equal(h.n, 0);
		unguard(&g);
	}
}

/* Caught by fuzz_container (with checksums recomputed): the reader took
 * n_tensors from the trailer (up to 10^7) and allocated that many tensor
 * entries, about 1.4 GB, before finding the directory too short to hold
 * them. A 1 KB file could make any program that opens it allocate 1.4 GB.
 * Record counts are now checked against the directory's size first. */
static void test_container_tensor_count_bounded_by_directory(void **state)
{
	(void)state;
	const uint8_t data[4] = {1, 2, 3, 4};
	ct_tensor t = {.name = "a", .dtype = DF11_DTYPE_U8, .ndim = 1,
		       .shape = {4}, .data = data, .nbytes = 4,
		       .payload = data, .payload_size = 4};
	size_t size;
	uint8_t *c = ct_build("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],"
			      "\"data_offsets\":[0,4]}}", 0, &t, 1, &size);
	char *dir = make_tmpdir();
	char *path = path_join(dir, "c.df11");
	write_bytes(path, c, size);
	df11_model *m;
	assert_int_equal(df11_model_open(path, &m), DF11_OK);
	df11_model_close(m);
	const uint64_t counts[][2] = {{1, 10000000}, {100000, 1}, {1, 2}};
	for (size_t k = 0; k < 3; k++) {
		df11_wr64(c + size - 64 + 32, counts[k][0]);
		df11_wr64(c + size - 64 + 40, counts[k][1]);
		df11_ct_fix_checksums(c, size);
		write_bytes(path, c, size);
		alloc_track_reset();
		m = (df11_model *)1;
		assert_int_equal(df11_model_open(path, &m), DF11_BAD_DATA);
		assert_null(m);
		if (alloc_track_largest() > 1024 * 1024)
			fail_msg("%zu-byte container claiming %llu files, %llu "
				 "tensors: allocated %zu bytes at once", size,
				 (unsigned long long)counts[k][0],
				 (unsigned long long)counts[k][1],
				 alloc_track_largest());
	}
	free(path);
	rm_tree(dir);
	free(dir);
	free(c);
}

/* Caught by tests/test_hostile_file.c ("overlapping payloads"): a stored
 * (not encoded) tensor whose record points at another tensor's payload,
 * with the stored checksum recomputed over those bytes, read back as the
 * other tensor's bytes with DF11_OK: reads of stored tensors checked only
 * the stored checksum, never the original's. Such records are now refused
 * at open (a stored payload's two checksums must be equal). */
static void test_container_stored_tensor_checksums_agree(void **state)
{
	(void)state;
	const uint8_t a[4] = {1, 2, 3, 4}, b[4] = {9, 9, 9, 9};
	ct_tensor t[2] = {
		{.name = "a", .dtype = DF11_DTYPE_U8, .ndim = 1, .shape = {4},
		 .data = a, .nbytes = 4, .payload = a, .payload_size = 4},
		{.name = "b", .dtype = DF11_DTYPE_U8, .ndim = 1, .shape = {4},
		 .data = b, .nbytes = 4, .payload = b, .payload_size = 4},
	};
	const char *json = "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],"
			   "\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"U8\","
			   "\"shape\":[4],\"data_offsets\":[4,8]}}";
	size_t size;
	uint8_t *c = ct_build(json, 0, t, 2, &size);
	char *dir = make_tmpdir();
	char *path = path_join(dir, "c.df11");
	write_bytes(path, c, size);
	df11_model *m;
	uint8_t got[4];
	assert_int_equal(df11_model_open(path, &m), DF11_OK);
	assert_int_equal(df11_model_read(m, 1, got, 4), DF11_OK);
	assert_memory_equal(got, b, 4);
	df11_model_close(m);
	free(c);
	/* b's record now points at a's payload. */
	t[1].rec_off = 256 + 256; /* a's payload follows the header section */
	c = ct_build(json, 0, t, 2, &size);
	write_bytes(path, c, size);
	m = NULL;
	df11_result r = df11_model_open(path, &m);
	if (r == DF11_OK) {
		r = df11_model_read(m, 1, got, 4);
		if (r == DF11_OK)
			fail_msg("tensor b read back as %u %u %u %u", got[0],
				 got[1], got[2], got[3]);
		df11_model_close(m);
	}
	assert_int_not_equal(df11_verify(path, NULL, NULL, NULL, NULL, NULL),
			     DF11_OK);
	free(path);
	rm_tree(dir);
	free(dir);
	free(c);
}

/* Caught by tests/test_hostile_file.c ("2^40 elements in a small
 * payload"; the rule "a hostile file never makes a program allocate more
 * than the file's real contents justify"): a container whose directory and
 * safetensors header agreed on a BF16 tensor of 2^40 elements, stored as a
 * few hundred encoded bytes, opened fine, and df11_verify (like any
 * program sizing its buffer from df11_tensor_desc.nbytes) then asked for
 * 2 TiB. Encoded tensors now need at least one stored byte per element. */
static void test_container_elements_bounded_by_payload(void **state)
{
	(void)state;
	uint16_t w[300];
	df11_synth_matrix(3, 1, 300, 0.02f, w);
	size_t enc_size;
	uint8_t *enc = encode_alloc(w, 300, NULL, &enc_size);
	ct_tensor t = {.name = "w", .dtype = DF11_DTYPE_BF16, .ndim = 1,
		       .shape = {(uint64_t)1 << 40}, .codec = 1, .data = NULL,
		       .nbytes = (uint64_t)1 << 41, .payload = enc,
		       .payload_size = enc_size};
	size_t size;
	uint8_t *c = ct_build("{\"w\":{\"dtype\":\"BF16\",\"shape\":"
			      "[1099511627776],\"data_offsets\":[0,"
			      "2199023255552]}}", 0, &t, 1, &size);
	char *dir = make_tmpdir();
	char *path = path_join(dir, "c.df11");
	write_bytes(path, c, size);
	df11_model *m = (df11_model *)1;
	alloc_track_reset();
	assert_int_equal(df11_model_open(path, &m), DF11_BAD_DATA);
	assert_null(m);
	assert_int_not_equal(df11_verify(path, NULL, NULL, NULL, NULL, NULL),
			     DF11_OK);
	assert_true(alloc_track_largest() < 1024 * 1024);
	free(path);
	rm_tree(dir);
	free(dir);
	free(c);
	free(enc);
}

/* Caught reviewing the container reader ("overlapping
 * tensors"): the directory could point any number of tensor records at
 * one payload. With identical tensors every checksum holds, so a container
 * of N records and one 700-byte payload opened and unpacked to N times the
 * data: a decompression bomb, where df11 otherwise never expands more than
 * 2x. Sections may no longer share bytes. */
static void test_container_sections_do_not_overlap(void **state)
{
	(void)state;
	uint16_t w[300];
	df11_synth_matrix(4, 1, 300, 0.02f, w);
	size_t enc_size;
	uint8_t *enc = encode_alloc(w, 300, NULL, &enc_size);
	ct_tensor t[2];
	for (int i = 0; i < 2; i++)
		t[i] = (ct_tensor){.name = i ? "b" : "a", .dtype = DF11_DTYPE_BF16,
				   .ndim = 1, .shape = {300}, .codec = 1,
				   .data = w, .nbytes = 600, .payload = enc,
				   .payload_size = enc_size};
	const char *json = "{\"a\":{\"dtype\":\"BF16\",\"shape\":[300],"
			   "\"data_offsets\":[0,600]},\"b\":{\"dtype\":"
			   "\"BF16\",\"shape\":[300],\"data_offsets\":"
			   "[600,1200]}}";
	size_t size;
	uint8_t *c = ct_build(json, 0, t, 2, &size);
	char *dir = make_tmpdir();
	char *path = path_join(dir, "c.df11");
	write_bytes(path, c, size);
	df11_model *m;
	assert_int_equal(df11_model_open(path, &m), DF11_OK);
	df11_model_close(m);
	free(c);
	t[1].rec_off = 512; /* a's payload, right after the header section */
	c = ct_build(json, 0, t, 2, &size);
	write_bytes(path, c, size);
	m = (df11_model *)1;
	assert_int_equal(df11_model_open(path, &m), DF11_BAD_DATA);
	assert_null(m);
	free(path);
	rm_tree(dir);
	free(dir);
	free(c);
	free(enc);
}

/* Caught by fuzz_container in CI (a ChangeBinInt mutation, checksums
 * recomputed): a BF16 record of n elements whose encoded payload declared
 * another count in its own header opened fine, and every read of the n
 * elements the record promised failed with DF11_INVALID_ARG ("output
 * holds n elements, tensor has m"), blaming the caller for the file; a
 * payload of more elements than its record unpacked its first n, and
 * df11_model_encoded handed it to a GPU engine that sizes buffers from
 * the shape. Reads, range reads, df11_model_encoded, verify and unpack now
 * refuse such a tensor as bad data (after the checksums, so a corrupted
 * count is still reported as a checksum failure). */
static void test_container_payload_count_matches_record(void **state)
{
	(void)state;
	uint16_t w[301], got[300];
	df11_synth_matrix(5, 1, 301, 0.02f, w);
	const char *json = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[300],"
			   "\"data_offsets\":[0,600]}}";
	char *dir = make_tmpdir();
	char *path = path_join(dir, "c.df11");
	char *out = path_join(dir, "out.safetensors");
	for (uint64_t n = 299; n <= 301; n++) {
		size_t enc_size, size;
		uint8_t *enc = encode_alloc(w, n, NULL, &enc_size);
		ct_tensor t = {.name = "w", .dtype = DF11_DTYPE_BF16,
			       .ndim = 1, .shape = {300}, .codec = 1,
			       .data = w, .nbytes = 600, .payload = enc,
			       .payload_size = enc_size};
		uint8_t *c = ct_build(json, 0, &t, 1, &size);
		write_bytes(path, c, size);
		df11_model *m;
		assert_int_equal(df11_model_open(path, &m), DF11_OK);
		const void *e;
		size_t es;
		df11_result want = n == 300 ? DF11_OK : DF11_BAD_DATA;
		assert_int_equal(df11_model_read(m, 0, got, 600), want);
		if (n == 300)
			assert_memory_equal(got, w, 600);
		assert_int_equal(df11_model_read_range(m, 0, 10, 290, got), want);
		assert_int_equal(df11_model_encoded(m, 0, &e, &es), want);
		df11_model_close(m);
		assert_int_equal(df11_verify(path, NULL, NULL, NULL, NULL, NULL),
				 n == 300 ? DF11_OK : DF11_CHECKSUM);
		assert_int_equal(df11_unpack(path, out, NULL, NULL), want);
		assert_int_equal(access(out, F_OK) == 0, n == 300);
		unlink(out);
		free(c);
		free(enc);
	}
	free(out);
	free(path);
	rm_tree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_block_log2_with_large_windows),
		cmocka_unit_test(test_decoder_scratch_bounded_by_tensor_size),
		cmocka_unit_test(test_st_parse_short_buffer),
		cmocka_unit_test(test_container_tensor_count_bounded_by_directory),
		cmocka_unit_test(test_container_stored_tensor_checksums_agree),
		cmocka_unit_test(test_container_elements_bounded_by_payload),
		cmocka_unit_test(test_container_sections_do_not_overlap),
		cmocka_unit_test(test_container_payload_count_matches_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
