/*
 * Hostile and corrupted encoded tensors: every header field out
 * of range, block indexes pointing outside the tensor, corrupted window
 * gaps, malformed code tables, truncation at every length, every bit flip
 * in the header, table and index. For each, every entry point (parse,
 * inspect, the reference decoder, the fast decoder on 1 and 4 threads,
 * range decodes) must refuse or give back exactly the original words:
 * never wrong data, never a crash, never an allocation the input's size
 * does not justify. Inputs sit right before a PROT_NONE page, so an
 * over-read faults even without AddressSanitizer.
 *
 * The sign|mantissa plane and equal-length code swaps in the stream cannot
 * be checked at this level (they are raw data); the container's checksums
 * cover them (tests of the container and df11-verify).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "df11.h"
#include "codec/parse.h"
#include "synth/synth.h"
#include "tests/alloc_track.h"
#include "tests/hostile_util.h"
#include "tests/testutil.h"

/* Bytes a decode may hold beyond the input's size: the decode job (about
 * 41 KB) and tables. Everything else must scale with the input. */
#define ALLOC_SLACK (96u * 1024u)
#define ALLOC_PER_BYTE 40u

/* ------------------------------------------------------------ helpers */

/* A small Huffman tensor with many blocks and windows: 1200 synthetic
 * weights, 64-bit windows, 2 windows per block. */
typedef struct sample {
	uint16_t w[1200];
	uint64_t n;
	uint8_t *enc;
	size_t size;
	df11_parsed P;
} sample;

static void make_sample(sample *s, int window_log2, int block_log2)
{
	s->n = 1200;
	df11_synth_matrix(31, 3, 400, 0.02f, s->w);
	df11_encode_options opt = {.window_log2 = window_log2,
				   .block_log2 = block_log2};
	s->enc = encode_alloc(s->w, s->n, &opt, &s->size);
	assert_int_equal(df11_parse(s->enc, s->size, &s->P), DF11_OK);
	assert_int_equal(s->P.layout.codec, DF11_CODEC_HUFFMAN);
}

enum outcome { REFUSED, EXACT };

/* Runs every entry point on (src, size). Each must refuse, or decode to
 * want[0..n) exactly (want may be NULL: then refusing is the only right
 * answer). Returns REFUSED if the reference decoder refused. */
static enum outcome check_input(const uint8_t *src, size_t size,
				const uint16_t *want, uint64_t n,
				const char *what)
{
	guarded g = guard(src, size);
	uint64_t cap = n ? n : 1;
	uint16_t *out = malloc(2 * cap);
	assert_non_null(out);
	df11_decoder *d1 = df11_decoder_new(1), *d4 = df11_decoder_new(4);
	assert_non_null(d1);
	assert_non_null(d4);

	alloc_track_reset();
	df11_tensor_info info;
	df11_result r = df11_inspect(g.p, size, &info);

	memset(out, 0xa5, 2 * cap);
	df11_result ref = df11_decode_reference(g.p, size, out, n);
	if (ref == DF11_OK && (!want || memcmp(out, want, 2 * n) != 0))
		fail_msg("%s: reference decoder gave wrong data", what);
	df11_decoder *ds[2] = {d1, d4};
	for (int k = 0; k < 2; k++) {
		memset(out, 0x5a, 2 * cap);
		r = df11_decode(ds[k], g.p, size, out, n);
		if (r == DF11_OK && (!want || memcmp(out, want, 2 * n) != 0))
			fail_msg("%s: fast decoder (%s) gave wrong data", what,
				 k ? "4 threads" : "1 thread");
		if (r != DF11_OK && r != DF11_BAD_DATA && r != DF11_UNSUPPORTED &&
		    r != DF11_INVALID_ARG)
			fail_msg("%s: fast decoder returned %d", what, (int)r);
	}
	/* Ranges: each block boundary region and a middle slice. */
	uint64_t ranges[][2] = {{0, n}, {n / 3, n / 3}, {n ? n - 1 : 0, n ? 1 : 0},
				{n / 2, n - n / 2}, {1, n > 130 ? 129 : 0}};
	for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
		uint64_t f = ranges[k][0], c = ranges[k][1];
		r = df11_decode_range(d1, g.p, size, f, c, out);
		if (r == DF11_OK && c &&
		    (!want || memcmp(out, want + f, 2 * c) != 0))
			fail_msg("%s: range %llu+%llu gave wrong data", what,
				 (unsigned long long)f, (unsigned long long)c);
	}
	size_t peak = alloc_track_peak();
	if (peak > ALLOC_SLACK + ALLOC_PER_BYTE * size)
		fail_msg("%s: %zu-byte input made the library hold %zu bytes",
			 what, size, peak);

	df11_decoder_free(d1);
	df11_decoder_free(d4);
	free(out);
	unguard(&g);
	return ref == DF11_OK ? EXACT : REFUSED;
}

static void expect_refused(const uint8_t *src, size_t size, uint64_t n,
			   const char *what)
{
	df11_parsed P;
	df11_result r = df11_parse(src, size, &P);
	if (r != DF11_BAD_DATA && r != DF11_UNSUPPORTED)
		fail_msg("%s: parse returned %d, expected a refusal", what,
			 (int)r);
	assert_int_equal(check_input(src, size, NULL, n, what), REFUSED);
}

/* -------------------------------------------------------------- tests */

/* Each header field set to values that overflow or leave its range. */
static void test_header_fields_out_of_range(void **state)
{
	(void)state;
	sample s;
	make_sample(&s, 6, 1);
	const uint64_t n = s.n;
	const struct {
		const char *what;
		unsigned off, width;
		uint64_t value;
	} mods[] = {
		{"n_elems 2^60", 8, 8, (uint64_t)1 << 60},
		{"n_elems 2^50 + 1", 8, 8, ((uint64_t)1 << 50) + 1},
		{"n_elems 2^64 - 1", 8, 8, UINT64_MAX},
		{"n_elems 0", 8, 8, 0},
		{"stream_bits 0", 16, 8, 0},
		{"stream_bits < n_elems", 16, 8, 1199},
		{"stream_bits > 15 n_elems", 16, 8, 15 * 1200 + 1},
		{"stream_bits 2^64 - 1", 16, 8, UINT64_MAX},
		{"stream_bits 2^63", 16, 8, (uint64_t)1 << 63},
		{"table_size 0", 24, 2, 0},
		{"table_size 2", 24, 2, 2},
		{"table_size 131", 24, 2, 131},
		{"table_size 65535", 24, 2, 65535},
		{"window_log2 0", 6, 1, 0},
		{"window_log2 5", 6, 1, 5},
		{"window_log2 17", 6, 1, 17},
		{"window_log2 255", 6, 1, 255},
		{"block_log2 13", 7, 1, 13},
		{"block_log2 255", 7, 1, 255},
		{"max_code_len 0", 5, 1, 0},
		{"max_code_len 16", 5, 1, 16},
		{"max_code_len 255", 5, 1, 255},
		{"codec 3", 4, 1, 3},
		{"codec 255", 4, 1, 255},
		{"single_exponent in a huffman header", 26, 1, 7},
		{"magic", 0, 1, 'd'},
		{"magic byte 3", 3, 1, 'U'},
	};
	uint8_t *buf = malloc(s.size);
	assert_non_null(buf);
	for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
		memcpy(buf, s.enc, s.size);
		uint64_t v = mods[i].value;
		for (unsigned b = 0; b < mods[i].width; b++)
			buf[mods[i].off + b] = (uint8_t)(v >> (8 * b));
		expect_refused(buf, s.size, n, mods[i].what);
	}
	/* n_elems off by one keeps the size (sections are 16-byte aligned):
	 * parse cannot tell, the whole-tensor decoders must. (A range of
	 * intact blocks still decodes, to the right words.) */
	uint16_t *out = malloc(2 * (n + 1));
	assert_non_null(out);
	df11_decoder *d = df11_decoder_new(1);
	for (int delta = -1; delta <= 1; delta += 2) {
		memcpy(buf, s.enc, s.size);
		uint64_t m = n + (uint64_t)delta;
		df11_wr64(buf + 8, m);
		assert_int_equal(df11_decode_reference(buf, s.size, out, m),
				 DF11_BAD_DATA);
		assert_int_equal(df11_decode(d, buf, s.size, out, m),
				 DF11_BAD_DATA);
		if (df11_decode_range(d, buf, s.size, 100, 500, out) == DF11_OK)
			assert_memory_equal(out, s.w + 100, 2 * 500);
	}
	df11_decoder_free(d);
	free(out);
	/* Every reserved byte. */
	for (unsigned off = 27; off < 32; off++) {
		memcpy(buf, s.enc, s.size);
		buf[off] = 0x80;
		expect_refused(buf, s.size, n, "reserved byte set");
	}
	/* window_log2 + block_log2 = 21: blocks past the 2^20-bit limit. */
	memcpy(buf, s.enc, s.size);
	buf[6] = 16;
	buf[7] = 5;
	expect_refused(buf, s.size, n, "window_log2 16 + block_log2 5");
	free(buf);
	free(s.enc);
}

/* Raw and single-exponent headers that lie about their size or carry
 * fields of another codec; header-only inputs with huge claims. */
static void test_raw_and_single_headers(void **state)
{
	(void)state;
	uint8_t h[64] = {0};
	memcpy(h, DF11_TENSOR_MAGIC, 4);
	/* Raw, 2^60 elements, 32 bytes given. */
	h[4] = DF11_CODEC_RAW;
	df11_wr64(h + 8, (uint64_t)1 << 60);
	expect_refused(h, 32, 16, "raw tensor of 2^60 elements");
	/* Raw with 2^49 elements: 32 + 2^50 bytes claimed, 32 present. */
	df11_wr64(h + 8, (uint64_t)1 << 49);
	expect_refused(h, 32, 16, "raw tensor of 2^49 elements");
	/* Raw, 16 elements, one byte short and one byte long. */
	df11_wr64(h + 8, 16);
	expect_refused(h, 63, 16, "raw tensor one byte short");
	uint8_t big[65] = {0};
	memcpy(big, h, 64);
	expect_refused(big, 65, 16, "raw tensor one byte long");
	/* Raw with huffman fields or an exponent set. */
	h[5] = 3;
	expect_refused(h, 64, 16, "raw tensor with max_code_len");
	h[5] = 0;
	h[26] = 1;
	expect_refused(h, 64, 16, "raw tensor with single_exponent");
	h[26] = 0;
	/* Single, 2^60 elements. */
	h[4] = DF11_CODEC_SINGLE;
	df11_wr64(h + 8, (uint64_t)1 << 60);
	expect_refused(h, 64, 32, "single tensor of 2^60 elements");
	df11_wr64(h + 8, 32);
	df11_wr64(h + 16, 5);
	expect_refused(h, 64, 32, "single tensor with stream_bits");
	/* Shorter than a header, including nothing at all. */
	for (size_t len = 0; len < 32; len++)
		expect_refused(h, len, 1, "shorter than the header");
	df11_result r = df11_inspect(NULL, 0, &(df11_tensor_info){0});
	assert_true(r == DF11_BAD_DATA || r == DF11_INVALID_ARG);
}

/* Block starts outside [0, n_elems], out of order, or not 0 first: parse
 * refuses. Block starts inside the range but wrong: the decoders refuse,
 * or (where a decoder never looks at that entry) give the exact data. */
static void test_block_index_outside_and_wrong(void **state)
{
	(void)state;
	sample s;
	make_sample(&s, 6, 1);
	const df11_layout *L = &s.P.layout;
	uint8_t *buf = malloc(s.size);
	assert_non_null(buf);
	uint8_t *bs = buf + L->off_block_starts;
	assert_true(L->n_blocks > 8);
	const uint64_t outside[] = {s.n + 1, s.n + 1000, (uint64_t)1 << 62,
				    UINT64_MAX};
	for (uint64_t j = 0; j < L->n_blocks; j += 3) {
		for (size_t k = 0; k < 4; k++) {
			memcpy(buf, s.enc, s.size);
			df11_wr64(bs + 8 * j, outside[k]);
			expect_refused(buf, s.size, s.n,
				       "block start past the tensor");
		}
	}
	memcpy(buf, s.enc, s.size);
	df11_wr64(bs, 1);
	expect_refused(buf, s.size, s.n, "block 0 not at element 0");
	memcpy(buf, s.enc, s.size);
	df11_wr64(bs + 8 * 5, df11_rd64(bs + 8 * 3));
	df11_wr64(bs + 8 * 4, df11_rd64(bs + 8 * 3) + 50);
	expect_refused(buf, s.size, s.n, "block starts decreasing");

	int refused = 0, total = 0;
	for (uint64_t j = 1; j < L->n_blocks; j++) {
		uint64_t orig = df11_rd64(s.enc + L->off_block_starts + 8 * j);
		const uint64_t vals[] = {orig - 1, orig + 1, 0, s.n,
					 df11_rd64(s.enc + L->off_block_starts +
						   8 * (j - 1))};
		for (size_t k = 0; k < 5; k++) {
			if (vals[k] == orig)
				continue;
			memcpy(buf, s.enc, s.size);
			df11_wr64(bs + 8 * j, vals[k]);
			refused += check_input(buf, s.size, s.w, s.n,
					       "wrong block start") == REFUSED;
			total++;
		}
	}
	/* Every wrong block start is something the reference checks. */
	assert_int_equal(refused, total);
	free(buf);
	free(s.enc);
}

/* Every window's gap set to every nibble value. */
static void test_gaps_every_value(void **state)
{
	(void)state;
	sample s;
	make_sample(&s, 6, 1);
	const df11_layout *L = &s.P.layout;
	uint8_t *buf = malloc(s.size);
	assert_non_null(buf);
	int refused = 0, total = 0;
	for (uint64_t k = 0; k < L->n_windows; k++) {
		for (unsigned v = 0; v < 16; v++) {
			memcpy(buf, s.enc, s.size);
			uint8_t *g = buf + L->off_gaps + k / 2;
			unsigned shift = (unsigned)(k & 1) * 4;
			if (((*g >> shift) & 15u) == v)
				continue;
			*g = (uint8_t)((*g & ~(15u << shift)) | (v << shift));
			refused += check_input(buf, s.size, s.w, s.n,
					       "corrupted gap") == REFUSED;
			total++;
		}
	}
	assert_int_equal(refused, total);
	/* The unused high nibble of an odd window count. */
	if (L->n_windows & 1) {
		memcpy(buf, s.enc, s.size);
		buf[L->off_gaps + L->n_windows / 2] |= 0x30;
		expect_refused(buf, s.size, s.n, "unused gap nibble");
	}
	free(buf);
	free(s.enc);
}

/* Code tables that are over-subscribed, incomplete, longer than the
 * header's limit, or overrun the symbol range. */
static void test_code_table_malformed(void **state)
{
	(void)state;
	sample s;
	make_sample(&s, 6, 1);
	const df11_layout *L = &s.P.layout;
	uint8_t *buf = malloc(s.size);
	assert_non_null(buf);
	uint8_t *t = buf + L->off_table;
	unsigned count = s.enc[L->off_table + 1] + 1u;
	for (unsigned i = 0; i < count; i++) {
		unsigned nib = (s.enc[L->off_table + 2 + i / 2] >> (4 * (i & 1))) & 15u;
		if (nib == 0)
			continue;
		/* A shorter code: Kraft sum above 1 (over-subscribed). */
		memcpy(buf, s.enc, s.size);
		t[2 + i / 2] = (uint8_t)(t[2 + i / 2] - (1u << (4 * (i & 1))));
		expect_refused(buf, s.size, s.n, nib > 1 ? "over-subscribed table"
					      : "table with a symbol removed");
		/* A longer code: Kraft sum below 1 (incomplete). */
		if (nib < L->max_code_len) {
			memcpy(buf, s.enc, s.size);
			t[2 + i / 2] = (uint8_t)(t[2 + i / 2] + (1u << (4 * (i & 1))));
			expect_refused(buf, s.size, s.n, "incomplete table");
		}
	}
	/* Header's max_code_len one below and one above the longest code. */
	memcpy(buf, s.enc, s.size);
	buf[5]--;
	expect_refused(buf, s.size, s.n, "code longer than max_code_len");
	memcpy(buf, s.enc, s.size);
	buf[5]++;
	expect_refused(buf, s.size, s.n, "max_code_len above the longest code");
	/* Symbols past 255. */
	memcpy(buf, s.enc, s.size);
	t[0] = 255;
	expect_refused(buf, s.size, s.n, "table symbols past 255");
	/* Symbol count not matching table_size. */
	memcpy(buf, s.enc, s.size);
	t[1] = (uint8_t)(t[1] + 2);
	expect_refused(buf, s.size, s.n, "table count vs size");
	free(buf);
	free(s.enc);
}

/* The tensor cut at every length (every section boundary among them) and
 * extended by trailing bytes. */
static void test_truncated_at_every_length(void **state)
{
	(void)state;
	sample s;
	make_sample(&s, 6, 1);
	const df11_layout *L = &s.P.layout;
	const uint64_t bounds[] = {L->off_table, L->off_block_starts, L->off_gaps,
				   L->off_sm, L->off_stream,
				   L->off_stream + L->stream_bytes, s.size - 1};
	for (size_t k = 0; k < sizeof bounds / sizeof bounds[0]; k++)
		expect_refused(s.enc, (size_t)bounds[k], s.n,
			       "cut at a section boundary");
	for (size_t len = 0; len < s.size; len += 7)
		expect_refused(s.enc, len, s.n, "truncated");
	uint8_t *big = calloc(1, s.size + 16);
	assert_non_null(big);
	memcpy(big, s.enc, s.size);
	for (size_t extra = 1; extra <= 16; extra++)
		expect_refused(big, s.size + extra, s.n, "trailing bytes");
	free(big);
	free(s.enc);
}

/* Decodes with the reference, the fast decoder and a few ranges; each may
 * refuse, but all that accept must agree. Returns whether the reference
 * accepted and gave words other than want. */
static int check_agree(const uint8_t *src, size_t size, const uint16_t *want,
		       uint64_t n, df11_decoder *d)
{
	guarded g = guard(src, size);
	uint16_t *a = malloc(2 * n), *b = malloc(2 * n);
	assert_true(a && b);
	df11_result ra = df11_decode_reference(g.p, size, a, n);
	df11_result rb = df11_decode(d, g.p, size, b, n);
	if (ra == DF11_OK)
		assert_int_equal(rb, DF11_OK);
	if (ra == DF11_OK && rb == DF11_OK)
		assert_memory_equal(a, b, 2 * n);
	if (rb == DF11_OK &&
	    df11_decode_range(d, g.p, size, n / 3, n / 3, a) == DF11_OK)
		assert_memory_equal(a, b + n / 3, 2 * (n / 3));
	int changed = ra == DF11_OK && memcmp(b, want, 2 * n) != 0;
	free(a);
	free(b);
	unguard(&g);
	return changed;
}

/* Every single-bit flip before the data planes, on two layouts. In the
 * header, the block index and the gaps (redundant with the stream), each
 * decoder refuses or gives the exact words. A flip in the code table can
 * make another valid code (say, every symbol shifted by one): no decoder
 * can tell, so there they must only agree; the container's checksum is
 * what refuses those (counted and printed here). */
static void test_every_bit_flip_before_the_data(void **state)
{
	(void)state;
	const int layouts[][2] = {{6, 1}, {7, 0}};
	for (int li = 0; li < 2; li++) {
		sample s;
		make_sample(&s, layouts[li][0], layouts[li][1]);
		const df11_layout *L = &s.P.layout;
		uint8_t *buf = malloc(s.size);
		assert_non_null(buf);
		memcpy(buf, s.enc, s.size);
		df11_decoder *d = df11_decoder_new(1);
		int refused = 0, total = 0, table_changed = 0, table_total = 0;
		for (uint64_t bit = 0; bit < 8 * L->off_sm; bit++) {
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			uint64_t byte = bit / 8;
			if (byte >= L->off_table &&
			    byte < L->off_table + L->table_size) {
				table_changed += check_agree(buf, s.size, s.w,
							     s.n, d);
				table_total++;
			} else {
				char what[64];
				snprintf(what, sizeof what, "flip of bit %llu",
					 (unsigned long long)bit);
				refused += check_input(buf, s.size, s.w, s.n,
						       what) == REFUSED;
				total++;
			}
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		print_message("layout w%d b%d: header/index: %d of %d flips "
			      "refused, the rest decode exactly; table: %d of "
			      "%d flips decode to other valid data\n",
			      layouts[li][0], layouts[li][1], refused, total,
			      table_changed, table_total);
		df11_decoder_free(d);
		free(buf);
		free(s.enc);
	}
}

/* Flips in the stream and its padding: refused, or exact, or (an equal-
 * length code swap, which only a checksum can see) both decoders agree. */
static void test_stream_flips_never_crash(void **state)
{
	(void)state;
	sample s;
	make_sample(&s, 6, 1);
	uint8_t *buf = malloc(s.size);
	uint16_t *a = malloc(2 * s.n), *b = malloc(2 * s.n);
	assert_true(buf && a && b);
	memcpy(buf, s.enc, s.size);
	df11_decoder *d = df11_decoder_new(1);
	for (uint64_t bit = 8 * s.P.layout.off_stream; bit < 8 * s.size; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		guarded g = guard(buf, s.size);
		df11_result ra = df11_decode_reference(g.p, s.size, a, s.n);
		df11_result rb = df11_decode(d, g.p, s.size, b, s.n);
		if (ra == DF11_OK)
			assert_int_equal(rb, DF11_OK);
		if (ra == DF11_OK && rb == DF11_OK)
			assert_memory_equal(a, b, 2 * s.n);
		unguard(&g);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	df11_decoder_free(d);
	free(a);
	free(b);
	free(buf);
	free(s.enc);
}

/* Ranges whose first + count overflows, or runs past the tensor. */
static void test_range_arguments(void **state)
{
	(void)state;
	sample s;
	make_sample(&s, 6, 1);
	uint16_t out[4];
	df11_decoder *d = df11_decoder_new(1);
	assert_int_equal(df11_decode_range(d, s.enc, s.size, UINT64_MAX, 2, out),
			 DF11_INVALID_ARG);
	assert_int_equal(df11_decode_range(d, s.enc, s.size, 1, UINT64_MAX, out),
			 DF11_INVALID_ARG);
	assert_int_equal(df11_decode_range(d, s.enc, s.size, s.n, 1, out),
			 DF11_INVALID_ARG);
	assert_int_equal(df11_decode_range(d, s.enc, s.size, s.n, 0, out),
			 DF11_OK);
	assert_int_equal(df11_decode_range(d, s.enc, s.size, s.n - 4, 4, out),
			 DF11_OK);
	assert_memory_equal(out, s.w + s.n - 4, 8);
	assert_int_equal(df11_decode(d, s.enc, s.size, out, UINT64_MAX),
			 DF11_INVALID_ARG);
	df11_decoder_free(d);
	free(s.enc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_fields_out_of_range),
		cmocka_unit_test(test_raw_and_single_headers),
		cmocka_unit_test(test_block_index_outside_and_wrong),
		cmocka_unit_test(test_gaps_every_value),
		cmocka_unit_test(test_code_table_malformed),
		cmocka_unit_test(test_truncated_at_every_length),
		cmocka_unit_test(test_every_bit_flip_before_the_data),
		cmocka_unit_test(test_stream_flips_never_crash),
		cmocka_unit_test(test_range_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
