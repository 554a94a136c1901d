/*
 * Writes the seed corpora of the fuzz targets:
 *
 *   fuzz_gen_corpus DIR        (DIR is usually fuzz/corpus)
 *
 * into DIR/<target>/<name>. Seeds are small (fuzzers mutate faster from
 * small inputs) and cover each codec, each layout corner and the classic
 * malformations, so that fuzzing starts next to the interesting states.
 * Everything is deterministic: rerunning gives the committed files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "df11.h"
#include "codec/parse.h"
#include "df11/safetensors.h"
#include "synth/synth.h"
#include "huffman/huffman.h"

static const char *root;

static void put(const char *target, const char *name, const void *p,
		size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", root, target);
	if (mkdir(path, 0777) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* ------------------------------------------------------ huffman_table */

static void table_seed(const char *name, unsigned max_len, const uint8_t *tab,
		       size_t n)
{
	uint8_t buf[1 + 256];
	buf[0] = (uint8_t)max_len;
	memcpy(buf + 1, tab, n);
	put("huffman_table", name, buf, n + 1);
}

static void table_from_freq(const char *name, const uint64_t freq[256],
			    unsigned max_len)
{
	uint8_t len[256], tab[DF11_TABLE_MAX_SIZE];
	if (df11_huff_lengths(freq, max_len, len) < 2) {
		fprintf(stderr, "%s: no code\n", name);
		exit(1);
	}
	size_t n = df11_huff_table_write(len, tab);
	table_seed(name, max_len, tab, n);
}

static void gen_tables(void)
{
	uint64_t freq[256];
	char name[64];

	memset(freq, 0, sizeof freq);
	freq[120] = 3;
	freq[121] = 1;
	table_from_freq("two_symbols", freq, 15);

	/* Fibonacci weights: the longest codes a limit allows. */
	for (unsigned lim = 5; lim <= 15; lim += 10) {
		memset(freq, 0, sizeof freq);
		uint64_t a = 1, b = 1;
		for (int k = 0; k < 24; k++) {
			freq[100 + k] = a;
			uint64_t c = a + b;
			a = b;
			b = c;
		}
		snprintf(name, sizeof name, "fibonacci_limit%u", lim);
		table_from_freq(name, freq, lim);
	}
	for (int s = 0; s < 256; s++)
		freq[s] = 1;
	table_from_freq("uniform_256", freq, 15);

	/* Exponent statistics of realistic weights, several scales. */
	static uint16_t w[1 << 16];
	const float stds[] = {0.002f, 0.02f, 0.2f, 2.0f};
	for (int i = 0; i < 4; i++) {
		df11_synth_matrix(7 + (uint64_t)i, 64, 1024, stds[i], w);
		df11_exponent_stats st;
		df11_exponent_histogram(w, 1 << 16, &st);
		snprintf(name, sizeof name, "weights_std%d", i);
		table_from_freq(name, st.count, 15);
		snprintf(name, sizeof name, "weights_std%d_limit9", i);
		table_from_freq(name, st.count, 9);
	}

	/* A code whose first listed symbol is absent (length 0). */
	const uint8_t lead0[] = {10, 2, 0x10, 0x01};
	table_seed("leading_absent_symbol", 15, lead0, sizeof lead0);
	/* Malformed: each is refused for one reason. */
	const uint8_t over[] = {0, 2, 0x11, 0x01};        /* three 1-bit codes */
	table_seed("oversubscribed", 15, over, sizeof over);
	const uint8_t incomplete[] = {0, 2, 0x21, 0x00};  /* 1/2 + 1/4 */
	table_seed("incomplete", 15, incomplete, sizeof incomplete);
	const uint8_t one[] = {5, 0, 0x01};
	table_seed("one_symbol", 15, one, sizeof one);
	const uint8_t past[] = {250, 9, 0x11, 0, 0, 0, 0};
	table_seed("symbols_past_255", 15, past, sizeof past);
	const uint8_t nibble[] = {0, 0 + 2, 0x11, 0x10};
	table_seed("unused_nibble_set", 15, nibble, sizeof nibble);
	const uint8_t longer[] = {0, 1, 0x11, 0x00};
	table_seed("size_too_long", 15, longer, sizeof longer);
	const uint8_t lim[] = {0, 3, 0x21, 0x33};
	table_seed("length_over_limit", 2, lim, sizeof lim);
	table_seed("limit_zero", 0, lim, sizeof lim);
	table_seed("limit_16", 16, lim, sizeof lim);
	table_seed("empty", 15, lim, 0);
}

/* ------------------------------------------------------ tensor_decode */

static uint8_t *encode(const uint16_t *w, uint64_t n,
		       const df11_encode_options *opt, size_t *size)
{
	size_t cap = df11_encode_bound(n);
	uint8_t *enc = malloc(cap);
	if (!enc || df11_encode(w, n, opt, enc, cap, size) != DF11_OK) {
		fprintf(stderr, "encode: %s\n", df11_last_error());
		exit(1);
	}
	return enc;
}

static void tensor_seed(const char *name, const uint16_t *w, uint64_t n,
			int wl, int bl, int ml)
{
	df11_encode_options opt = {.window_log2 = wl, .block_log2 = bl,
				   .max_code_len = ml};
	size_t size;
	uint8_t *enc = encode(w, n, &opt, &size);
	put("tensor_decode", name, enc, size);
	free(enc);
}

/* A valid Huffman tensor with one thing broken, for starting points next
 * to each check. */
static void corrupt_seed(const char *name, const uint16_t *w, uint64_t n,
			 int what)
{
	df11_encode_options opt = {.window_log2 = 6, .block_log2 = 1};
	size_t size;
	uint8_t *enc = encode(w, n, &opt, &size);
	df11_parsed P;
	if (df11_parse(enc, size, &P) != DF11_OK ||
	    P.layout.codec != DF11_CODEC_HUFFMAN || P.layout.n_blocks < 3) {
		fprintf(stderr, "%s: seed is not a multi-block tensor\n", name);
		exit(1);
	}
	const df11_layout *L = &P.layout;
	switch (what) {
	case 0: /* block 1 starts past the end */
		df11_wr64(enc + L->off_block_starts + 8, L->n_elems + 1);
		break;
	case 1: /* block 2 starts before block 1 */
		df11_wr64(enc + L->off_block_starts + 16, 1);
		break;
	case 2: /* window 1's gap moved by one bit */
		enc[L->off_gaps] ^= 0x10;
		break;
	case 3: /* a stream byte in the middle */
		enc[L->off_stream + L->stream_bytes / 2] ^= 0x24;
		break;
	case 4: /* nonzero padding */
		enc[size - 1] = 1;
		break;
	case 5: /* table over-subscribed: a length shortened */
		enc[L->off_table + 2] = (uint8_t)(enc[L->off_table + 2] - 1);
		break;
	default: /* n_elems 2^60 */
		df11_wr64(enc + 8, (uint64_t)1 << 60);
		break;
	}
	put("tensor_decode", name, enc, size);
	free(enc);
}

static void gen_tensors(void)
{
	static uint16_t w[4096];
	char name[64];
	uint16_t one = 0x3f80;

	tensor_seed("empty", w, 0, 0, 0, 0);
	tensor_seed("one_element", &one, 1, 0, 0, 0);
	for (int i = 0; i < 300; i++)
		w[i] = df11_bf16_join(120, (uint32_t)i);
	tensor_seed("single_exponent", w, 300, 0, 0, 0);
	df11_rng rng;
	df11_rng_seed(&rng, 1);
	for (int i = 0; i < 200; i++)
		w[i] = (uint16_t)df11_rng_next(&rng);
	tensor_seed("random_bits_raw", w, 200, 0, 0, 0);

	/* Huffman tensors across the layout range. */
	const int layouts[][4] = {
		/* elems, window_log2, block_log2, max_code_len */
		{2, 6, 0, 0},     {3, 6, 0, 0},     {64, 6, 0, 0},
		{500, 6, 0, 0},   {500, 6, 1, 0},   {1000, 6, 3, 0},
		{1000, 7, 2, 0},  {2048, 8, 0, 0},  {2048, 11, 6, 0},
		{3000, 6, 12, 0}, {3000, 16, 4, 0}, {4096, 9, 11, 0},
		{1500, 6, 2, 6},  {1500, 10, 1, 8}, {777, 6, 0, 15},
	};
	for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
		uint64_t n = (uint64_t)layouts[i][0];
		df11_synth_matrix(100 + i, 1, n, 0.02f, w);
		snprintf(name, sizeof name, "huffman_n%llu_w%d_b%d_l%d",
			 (unsigned long long)n, layouts[i][1], layouts[i][2],
			 layouts[i][3]);
		tensor_seed(name, w, n, layouts[i][1], layouts[i][2],
			    layouts[i][3]);
	}
	/* Long codes (15 bits): the decoders' slow path. */
	uint64_t n = 0, a = 1, b = 1;
	for (int k = 0; k < 16 && n < 4096; k++) {
		for (uint64_t i = 0; i < a && n < 4096; i++, n++)
			w[n] = df11_bf16_join(100u + (unsigned)k, (uint32_t)n);
		uint64_t c = a + b;
		a = b;
		b = c;
	}
	tensor_seed("long_codes", w, n, 6, 2, 0);

	df11_synth_matrix(5, 1, 1200, 0.02f, w);
	const char *corrupt[] = {"bad_block_start_past_end",
				 "bad_block_starts_decreasing",
				 "bad_gap", "bad_stream_byte",
				 "bad_padding", "bad_table_oversubscribed",
				 "bad_n_elems_2e60"};
	for (int i = 0; i < 7; i++)
		corrupt_seed(corrupt[i], w, 1200, i);
}

/* --------------------------------------------------------- roundtrip */

static void rt_seed(const char *name, unsigned wl, unsigned bl, unsigned ml,
		    unsigned flags, const uint8_t *data, size_t n)
{
	uint8_t buf[8192];
	buf[0] = (uint8_t)(wl - 6);
	buf[1] = (uint8_t)bl;
	buf[2] = (uint8_t)(ml - 2);
	buf[3] = (uint8_t)flags;
	memcpy(buf + 4, data, n);
	put("roundtrip", name, buf, n + 4);
}

static void gen_roundtrip(void)
{
	static uint16_t w[2048];
	uint8_t data[4096];
	char name[64];

	/* Mode 0: words as they are. */
	df11_synth_matrix(3, 1, 2048, 0.02f, w);
	for (int i = 0; i < 2048; i++) {
		data[2 * i] = (uint8_t)w[i];
		data[2 * i + 1] = (uint8_t)(w[i] >> 8);
	}
	const unsigned lay[][3] = {{6, 0, 15}, {6, 3, 15}, {7, 1, 5},
				   {11, 6, 15}, {16, 4, 15}, {8, 12, 3},
				   {9, 2, 2}};
	for (size_t i = 0; i < sizeof lay / sizeof lay[0]; i++) {
		snprintf(name, sizeof name, "words_w%u_b%u_l%u", lay[i][0],
			 lay[i][1], lay[i][2]);
		rt_seed(name, lay[i][0], lay[i][1], lay[i][2], 0, data,
			i < 3 ? 1024 : 4096);
	}
	rt_seed("words_force_raw", 6, 0, 15, 0x80, data, 512);
	rt_seed("words_threads4", 6, 2, 15, 3, data, 4096);
	rt_seed("words_empty", 6, 0, 15, 0, data, 0);
	rt_seed("words_one", 6, 0, 15, 0, data, 2);

	/* Mode 1: runs. */
	const uint8_t runs[] = {127, 1, 255, 126, 2, 200, 125, 3, 20,
				120, 4, 3, 100, 5, 0, 127, 6, 255,
				130, 7, 1, 0, 8, 0, 255, 9, 0};
	rt_seed("runs_w6_b0", 6, 0, 15, 1 << 2, runs, sizeof runs);
	rt_seed("runs_w6_b4_l4", 6, 4, 4, 1 << 2, runs, sizeof runs);
	rt_seed("runs_single_exponent", 6, 0, 15, 1 << 2, runs, 3);

	/* Mode 2: Fibonacci weights, 20 symbols; each limit. */
	for (unsigned ml = 2; ml <= 15; ml += (ml < 6 ? 1 : 3)) {
		uint8_t fib[200];
		fib[0] = 18; /* 2 + 18 = 20 symbols */
		fib[1] = 100;
		for (int i = 2; i < 200; i++)
			fib[i] = (uint8_t)(i * 37);
		snprintf(name, sizeof name, "fibonacci_l%u", ml);
		rt_seed(name, 6 + ml % 5, ml % 3, ml, 2 << 2, fib, sizeof fib);
	}

	/* Mode 3: synthetic weights. */
	for (int i = 0; i < 4; i++) {
		uint8_t syn[13] = {0};
		syn[0] = (uint8_t)(11 + i);
		syn[8] = (uint8_t)(4 + i);      /* rows - 1 */
		syn[9] = (uint8_t)(200 + 10 * i); /* cols, low byte */
		syn[10] = (uint8_t)i;           /* cols, high byte */
		syn[11] = (uint8_t)(20 * i + 1); /* std / 1e-3 - 1 */
		snprintf(name, sizeof name, "synth_%d", i);
		rt_seed(name, 6 + 2 * (unsigned)i, (unsigned)i, 15, 3 << 2, syn,
			sizeof syn);
	}
}

/* -------------------------------------------------------- safetensors */

/* u64 LE length | JSON | data_size bytes of data (a counting pattern). */
static size_t st_bytes(uint8_t *out, const char *json, size_t data_size)
{
	size_t n = strlen(json);
	df11_wr64(out, n);
	memcpy(out + 8, json, n);
	for (size_t i = 0; i < data_size; i++)
		out[8 + n + i] = (uint8_t)(i * 7 + 1);
	return 8 + n + data_size;
}

static void st_seed(const char *name, const char *json, size_t data_size)
{
	static uint8_t buf[1 << 16];
	put("safetensors", name, buf, st_bytes(buf, json, data_size));
}

static void gen_safetensors(void)
{
	st_seed("empty_header", "{}", 0);
	st_seed("one_u8", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],"
		"\"data_offsets\":[0,4]}}", 4);
	st_seed("mixed", "{\"__metadata__\":{\"format\":\"pt\"},"
		"\"w.0\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
		"\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]},"
		"\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[24,32]},"
		"\"z\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[32,32]},"
		"\"e\":{\"dtype\":\"F8_E4M3\",\"shape\":[1,1,2],\"data_offsets\":[32,34]}}",
		34);
	st_seed("every_dtype", "{"
		"\"a\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]},"
		"\"b\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[1,2]},"
		"\"c\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[2,4]},"
		"\"d\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[4,6]},"
		"\"e\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[6,10]},"
		"\"f\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[10,14]},"
		"\"g\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[14,22]},"
		"\"h\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[22,30]},"
		"\"i\":{\"dtype\":\"F8_E5M2\",\"shape\":[1],\"data_offsets\":[30,31]}}",
		31);
	st_seed("padded_header", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
		"\"data_offsets\":[0,1]}}        ", 1);
	/* Hostile: each is refused for one reason. */
	st_seed("shape_product_overflows", "{\"a\":{\"dtype\":\"BF16\",\"shape\":"
		"[4294967296,4294967296,2],\"data_offsets\":[0,4]}}", 4);
	st_seed("shape_times_dtype_overflows", "{\"a\":{\"dtype\":\"F64\",\"shape\":"
		"[2305843009213693952,2],\"data_offsets\":[0,8]}}", 8);
	st_seed("offsets_past_end", "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],"
		"\"data_offsets\":[0,8]}}", 4);
	st_seed("offsets_reversed", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],"
		"\"data_offsets\":[4,0]}}", 4);
	st_seed("overlapping", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],"
		"\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"U8\",\"shape\":[4],"
		"\"data_offsets\":[2,6]}}", 6);
	st_seed("hole", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],"
		"\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],"
		"\"data_offsets\":[3,5]}}", 5);
	st_seed("duplicate_name", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
		"\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
		"\"data_offsets\":[1,2]}}", 2);
	st_seed("unknown_dtype", "{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],"
		"\"data_offsets\":[0,1]}}", 1);
	st_seed("negative_dim", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],"
		"\"data_offsets\":[0,1]}}", 1);
	st_seed("nine_dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
		"\"data_offsets\":[0,1]}}", 1);
	st_seed("not_json", "{\"a\":", 0);
	uint8_t b[16] = {0};
	df11_wr64(b, (uint64_t)1 << 60);
	memcpy(b + 8, "{}", 2);
	put("safetensors", "header_length_2e60", b, 10);
	df11_wr64(b, 100);
	put("safetensors", "header_past_end", b, 10);
	df11_wr64(b, UINT64_MAX);
	put("safetensors", "header_length_max", b, 16);
	put("safetensors", "short", b, 5);
}

/* ----------------------------------------------------------- container */

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) != 0) {
		perror(path);
		exit(1);
	}
	long len = ftell(f);
	uint8_t *p = malloc((size_t)len + 1);
	rewind(f);
	if (!p || fread(p, 1, (size_t)len, f) != (size_t)len) {
		perror(path);
		exit(1);
	}
	fclose(f);
	*n = (size_t)len;
	return p;
}

static void spill(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* Packs `input` (a file or folder under tmp) and stores the container as
 * seed `name`. */
static void container_seed(const char *tmp, const char *input,
			   const char *name)
{
	char in[4096], out[4096];
	snprintf(in, sizeof in, "%s/%s", tmp, input);
	snprintf(out, sizeof out, "%s/%s.df11", tmp, name);
	df11_pack_options opt = {.threads = 1, .force = 1};
	if (df11_pack(in, out, &opt, NULL) != DF11_OK) {
		fprintf(stderr, "pack %s: %s\n", in, df11_last_error());
		exit(1);
	}
	size_t n;
	uint8_t *p = slurp(out, &n);
	put("container", name, p, n);
	free(p);
	unlink(out);
}

static void gen_containers(void)
{
	char tmp[] = "/tmp/df11-gen-corpus-XXXXXX";
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		exit(1);
	}
	static uint8_t buf[1 << 16];
	static uint16_t w[2048];
	char path[4096], json[1024];

	/* One file: a BF16 matrix that compresses, a stored F32, a scalar
	 * and a zero-size tensor. */
	df11_synth_matrix(9, 16, 64, 0.02f, w);
	snprintf(json, sizeof json, "{\"w\":{\"dtype\":\"BF16\",\"shape\":[16,64],"
		 "\"data_offsets\":[0,2048]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],"
		 "\"data_offsets\":[2048,2064]},\"s\":{\"dtype\":\"U8\",\"shape\":[],"
		 "\"data_offsets\":[2064,2065]},\"z\":{\"dtype\":\"BF16\",\"shape\":"
		 "[0],\"data_offsets\":[2065,2065]}}");
	size_t n = st_bytes(buf, json, 2065);
	memcpy(buf + n - 2065, w, 2048);
	snprintf(path, sizeof path, "%s/one.safetensors", tmp);
	spill(path, buf, n);
	container_seed(tmp, "one.safetensors", "one_file");

	/* BF16 tensors of each codec: raw (random bits), single exponent. */
	df11_rng rng;
	df11_rng_seed(&rng, 4);
	for (int i = 0; i < 256; i++)
		w[i] = (uint16_t)df11_rng_next(&rng);
	for (int i = 256; i < 512; i++)
		w[i] = df11_bf16_join(121, (uint32_t)i);
	snprintf(json, sizeof json, "{\"r\":{\"dtype\":\"BF16\",\"shape\":[256],"
		 "\"data_offsets\":[0,512]},\"one\":{\"dtype\":\"BF16\",\"shape\":"
		 "[256],\"data_offsets\":[512,1024]}}");
	n = st_bytes(buf, json, 1024);
	memcpy(buf + n - 1024, w, 1024);
	snprintf(path, sizeof path, "%s/codecs.safetensors", tmp);
	spill(path, buf, n);
	container_seed(tmp, "codecs.safetensors", "raw_and_single");

	/* A folder: two shards, the index and a config file. */
	snprintf(path, sizeof path, "%s/ckpt", tmp);
	mkdir(path, 0777);
	df11_synth_matrix(10, 8, 64, 0.05f, w);
	for (int k = 0; k < 2; k++) {
		snprintf(json, sizeof json, "{\"l%d.w\":{\"dtype\":\"BF16\","
			 "\"shape\":[8,64],\"data_offsets\":[0,1024]}}", k);
		n = st_bytes(buf, json, 1024);
		memcpy(buf + n - 1024, w, 1024);
		snprintf(path, sizeof path, "%s/ckpt/model-%d.safetensors", tmp, k);
		spill(path, buf, n);
	}
	const char *index = "{\"metadata\":{},\"weight_map\":{"
			    "\"l0.w\":\"model-0.safetensors\","
			    "\"l1.w\":\"model-1.safetensors\"}}";
	snprintf(path, sizeof path, "%s/ckpt/model.safetensors.index.json", tmp);
	spill(path, index, strlen(index));
	snprintf(path, sizeof path, "%s/ckpt/config.json", tmp);
	spill(path, "{\"hidden_size\":64}", 18);
	container_seed(tmp, "ckpt", "folder");

	/* Corrupt variants of the one-file container: cut at the trailer,
	 * a flipped byte in a payload, in the directory, in the header. */
	snprintf(path, sizeof path, "%s/one.safetensors", tmp);
	char out[4096];
	snprintf(out, sizeof out, "%s/x.df11", tmp);
	df11_pack_options opt = {.threads = 1, .force = 1};
	if (df11_pack(path, out, &opt, NULL) != DF11_OK)
		exit(1);
	uint8_t *c = slurp(out, &n);
	put("container", "cut_before_trailer", c, n - 64);
	put("container", "cut_in_header", c, 40);
	c[300] ^= 0x10;
	put("container", "payload_flip", c, n);
	c[300] ^= 0x10;
	c[n - 100] ^= 0x01;
	put("container", "directory_flip", c, n);
	c[n - 100] ^= 0x01;
	c[9] ^= 0x01;
	put("container", "header_flip", c, n);
	free(c);
	unlink(out);

	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
}

/* ------------------------------------------------------------ dfloat11 */

#ifndef DF11_DFLOAT11_FIXTURES
#define DF11_DFLOAT11_FIXTURES "tests/fixtures/dfloat11"
#endif

/* Byte `at` of tensor `name`'s data in the safetensors file p. */
static uint8_t *st_byte(uint8_t *p, size_t n, const char *name, uint64_t at)
{
	df11_st_header h;
	if (df11_st_parse(p, n, n, "seed", &h) != DF11_OK) {
		fprintf(stderr, "seed: %s\n", df11_last_error());
		exit(1);
	}
	uint8_t *b = NULL;
	for (size_t i = 0; i < h.n; i++)
		if (!strcmp(h.t[i].name, name) && at < h.t[i].end - h.t[i].begin)
			b = p + h.data_off + h.t[i].begin + at;
	df11_st_header_free(&h);
	if (!b) {
		fprintf(stderr, "seed: no byte %llu of %s\n",
			(unsigned long long)at, name);
		exit(1);
	}
	return b;
}

/* A seed: the config selector byte (fuzz_dfloat11.c), then the file. */
static void dfl_seed(const char *name, uint8_t config, const uint8_t *p,
		     size_t n)
{
	uint8_t *b = malloc(n + 1);
	if (!b)
		exit(1);
	b[0] = config;
	memcpy(b + 1, p, n);
	put("dfloat11", name, b, n + 1);
	free(b);
}

/* A tiny Llama (fuzz_dfloat11.c's second config) exported by df11 itself:
 * one small file per group, each a seed. */
static void gen_dfloat11_tiny(void)
{
	char tmp[] = "/tmp/df11-gen-dfl-XXXXXX";
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		exit(1);
	}
	static const struct {
		const char *name;
		unsigned rows, cols;
	} w[] = {
		{"lm_head.weight", 32, 8},
		{"model.embed_tokens.weight", 32, 8},
		{"model.layers.0.input_layernorm.weight", 8, 0},
		{"model.layers.0.mlp.down_proj.weight", 8, 16},
		{"model.layers.0.mlp.gate_proj.weight", 16, 8},
		{"model.layers.0.mlp.up_proj.weight", 16, 8},
		{"model.layers.0.post_attention_layernorm.weight", 8, 0},
		{"model.layers.0.self_attn.k_proj.weight", 4, 8},
		{"model.layers.0.self_attn.o_proj.weight", 8, 8},
		{"model.layers.0.self_attn.q_proj.weight", 8, 8},
		{"model.layers.0.self_attn.v_proj.weight", 4, 8},
		{"model.norm.weight", 8, 0},
	};
	size_t nw = sizeof w / sizeof *w;
	char json[4096];
	size_t jn = 0, off = 0;
	static uint16_t data[4096];
	jn += (size_t)snprintf(json + jn, sizeof json - jn, "{");
	for (size_t i = 0; i < nw; i++) {
		size_t n = w[i].rows * (w[i].cols ? w[i].cols : 1);
		if (w[i].cols)
			df11_synth_matrix(40 + i, w[i].rows, w[i].cols, 0.02f,
					  data + off);
		else
			df11_synth_norm(40 + i, n, 1.0f, data + off);
		if (w[i].cols)
			jn += (size_t)snprintf(json + jn, sizeof json - jn,
					       "%s\"%s\":{\"dtype\":\"BF16\","
					       "\"shape\":[%u,%u],\"data_offsets\":"
					       "[%zu,%zu]}", i ? "," : "", w[i].name,
					       w[i].rows, w[i].cols, 2 * off,
					       2 * (off + n));
		else
			jn += (size_t)snprintf(json + jn, sizeof json - jn,
					       "%s\"%s\":{\"dtype\":\"BF16\","
					       "\"shape\":[%u],\"data_offsets\":"
					       "[%zu,%zu]}", i ? "," : "", w[i].name,
					       w[i].rows, 2 * off, 2 * (off + n));
		off += n;
	}
	snprintf(json + jn, sizeof json - jn, "}");
	char path[4200], in[64], out[64];
	snprintf(in, sizeof in, "%s/in", tmp);
	snprintf(out, sizeof out, "%s/out", tmp);
	mkdir(in, 0755);
	snprintf(path, sizeof path, "%s/model.safetensors", in);
	size_t hn = strlen(json);
	uint8_t *st = malloc(8 + hn + 2 * off);
	df11_wr64(st, hn);
	memcpy(st + 8, json, hn);
	memcpy(st + 8 + hn, data, 2 * off);
	spill(path, st, 8 + hn + 2 * off);
	free(st);
	static const char cfg[] =
		"{\"model_type\": \"llama\", \"hidden_size\": 8, "
		"\"intermediate_size\": 16, \"vocab_size\": 32, "
		"\"num_attention_heads\": 2, \"num_key_value_heads\": 1, "
		"\"num_hidden_layers\": 1, \"head_dim\": 4, "
		"\"tie_word_embeddings\": false}\n";
	snprintf(path, sizeof path, "%s/config.json", in);
	spill(path, cfg, sizeof cfg - 1);
	df11_dfloat11_options opt = {.threads = 1};
	if (df11_export_dfloat11(in, out, &opt, NULL) != DF11_OK) {
		fprintf(stderr, "export: %s\n", df11_last_error());
		exit(1);
	}
	static const char *const files[][2] = {
		{"tiny_lm_head", "lm_head.safetensors"},
		{"tiny_embed", "model_embed_tokens.safetensors"},
		{"tiny_layer0", "model_layers_0.safetensors"},
		{"tiny_rest", "model.safetensors"},
	};
	for (size_t i = 0; i < 4; i++) {
		size_t n;
		snprintf(path, sizeof path, "%s/%s", out, files[i][1]);
		uint8_t *p = slurp(path, &n);
		dfl_seed(files[i][0], 1, p, n);
		free(p);
	}
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
}

/* Official files (tests/fixtures/make_dfloat11.py), as they are and with
 * one field broken each. */
static void gen_dfloat11(void)
{
	static const char *const files[][2] = {
		{"lm_head", "lm_head.safetensors"},
		{"layer0", "model_layers_0.safetensors"},
	};
	for (size_t i = 0; i < 2; i++) {
		char path[4096];
		size_t n;
		snprintf(path, sizeof path, "%s/llama/df11/%s",
			 DF11_DFLOAT11_FIXTURES, files[i][1]);
		uint8_t *p = slurp(path, &n);
		dfl_seed(files[i][0], 0, p, n);
		free(p);
	}
	gen_dfloat11_tiny();
	static const struct {
		const char *name, *tensor;
		uint64_t at;
		uint8_t xor;
	} cuts[] = {
		{"lut_pointer_past", "lm_head.luts", 0, 0xff},
		{"lut_length_zero", "lm_head.luts", 2 * 256 + 122, 0xff},
		{"gap_flip", "lm_head.gaps", 9, 0x10},
		{"position_flip", "lm_head.output_positions", 4, 0x01},
		{"stream_flip", "lm_head.encoded_exponent", 5000, 0x20},
		{"mantissa_flip", "lm_head.sign_mantissa", 77, 0x80},
	};
	char path[4096];
	snprintf(path, sizeof path, "%s/llama/df11/lm_head.safetensors",
		 DF11_DFLOAT11_FIXTURES);
	for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
		size_t n;
		uint8_t *p = slurp(path, &n);
		*st_byte(p, n, cuts[i].tensor, cuts[i].at) ^= cuts[i].xor;
		dfl_seed(cuts[i].name, 0, p, n);
		free(p);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR (usually fuzz/corpus)\n", argv[0]);
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0777) != 0 && errno != EEXIST) {
		perror(root);
		return 1;
	}
	gen_tables();
	gen_tensors();
	gen_roundtrip();
	gen_safetensors();
	gen_containers();
	gen_dfloat11();
	return 0;
}
