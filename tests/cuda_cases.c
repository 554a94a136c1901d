#include "tests/cuda_cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/format.h"
#include "synth/synth.h"

static uint16_t *words(uint64_t n)
{
	uint16_t *p = malloc(n * 2 + 2);
	if (!p) {
		fprintf(stderr, "cuda_cases: out of memory\n");
		abort();
	}
	return p;
}

static cuda_case *add(cuda_case **v, size_t *n, size_t *cap, const char *name,
		      uint16_t *data, uint64_t len)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		*v = realloc(*v, *cap * sizeof **v);
		if (!*v)
			abort();
	}
	cuda_case *c = &(*v)[(*n)++];
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", name);
	c->data = data;
	c->n = len;
	return c;
}

static uint16_t *copy_words(const uint16_t *src, uint64_t n)
{
	uint16_t *p = words(n);
	memcpy(p, src, n * 2);
	return p;
}

size_t cuda_cases_make(cuda_case **cases_ret)
{
	cuda_case *v = NULL;
	size_t n = 0, cap = 0;
	df11_rng r;
	uint16_t *w;

	add(&v, &n, &cap, "empty", words(0), 0);
	w = words(1);
	w[0] = 0x3f80;
	add(&v, &n, &cap, "one element", w, 1);
	w = words(1);
	w[0] = 0x7fc1;
	add(&v, &n, &cap, "one NaN", w, 1);

	uint64_t m = 100000;
	w = words(m);
	for (uint64_t i = 0; i < m; i++)
		w[i] = 0x3c00;
	add(&v, &n, &cap, "all equal (single codec)", w, m);
	w = words(m);
	memset(w, 0, m * 2);
	w[777] = 0x8000;
	add(&v, &n, &cap, "zeros and one -0", w, m);
	w = words(m);
	for (uint64_t i = 0; i < m; i++)
		w[i] = (uint16_t)(0x3f80 | (i & 0x7f) | ((i & 0x80) << 8));
	add(&v, &n, &cap, "one exponent, all mantissas", w, m);

	m = 65536;
	w = words(m);
	for (uint64_t i = 0; i < m; i++)
		w[i] = (uint16_t)i;
	add(&v, &n, &cap, "all bit patterns", w, m);
	uint16_t *s = copy_words(w, m);
	df11_rng_seed(&r, 9);
	for (uint64_t i = m - 1; i > 0; i--) {
		uint64_t j = df11_rng_next(&r) % (i + 1);
		uint16_t t = s[i];
		s[i] = s[j];
		s[j] = t;
	}
	add(&v, &n, &cap, "all bit patterns shuffled", s, m);
	w = words(4 * m);
	for (uint64_t i = 0; i < 4 * m; i++)
		w[i] = (i % 4 == 0) ? s[i / 4] : (uint16_t)(0x3c00 | (i & 0x807f));
	add(&v, &n, &cap, "bit patterns with a skew", w, 4 * m);

	m = 1 << 20;
	w = words(m);
	df11_rng_seed(&r, 5);
	for (uint64_t i = 0; i < m; i++)
		w[i] = (uint16_t)df11_rng_next(&r);
	add(&v, &n, &cap, "random bits (raw codec)", w, m);

	float scales[] = {1e-4f, 0.02f, 1.0f, 300.0f};
	for (int k = 0; k < 4; k++) {
		char name[64];
		w = words(512 * 2048);
		df11_synth_matrix(512 * 31 + 2048, 512, 2048, scales[k], w);
		snprintf(name, sizeof name, "gaussian std %g", (double)scales[k]);
		add(&v, &n, &cap, name, w, 512 * 2048);
	}

	w = words(m);
	df11_synth_matrix(77, 1024, 1024, 0.01f, w);
	df11_rng_seed(&r, 6);
	for (int k = 0; k < 200; k++) {
		uint64_t i = df11_rng_next(&r) % m;
		static const uint16_t specials[] = {0x7f80, 0xff80, 0x7fc0, 0x7f81,
						    0x0001, 0x8001, 0x7f7f, 0x4700};
		w[i] = specials[k % 8];
	}
	add(&v, &n, &cap, "heavy tails and specials", w, m);

	/* Lengths that are no multiple of any block, with layouts that give
	 * many windows and blocks, short code limits, and blocks larger and
	 * smaller than a work item. */
	static const uint64_t lens[] = {2, 3, 17, 255, 1000, 65537, 100003};
	static const df11_encode_options opts[] = {
		{0},
		{.window_log2 = 6, .block_log2 = 0},
		{.window_log2 = 6, .block_log2 = 3},
		{.window_log2 = 9, .block_log2 = 1, .max_code_len = 5},
		{.window_log2 = 16, .block_log2 = 4},
		{.threads = 2, .window_log2 = 7, .block_log2 = 2},
		{.window_log2 = 6, .block_log2 = 8},
	};
	uint16_t *base = words(100003);
	df11_synth_matrix(4, 1, 100003, 0.02f, base);
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
		for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
			char name[64];
			snprintf(name, sizeof name, "len %llu layout w%d b%d c%d",
				 (unsigned long long)lens[i], opts[k].window_log2,
				 opts[k].block_log2, opts[k].max_code_len);
			cuda_case *c = add(&v, &n, &cap, name,
					   copy_words(base, lens[i]), lens[i]);
			c->opt = opts[k];
		}
	free(base);

	/* Exponent counts halving from one exponent to the next: codes of
	 * every length up to 15, past the 12-bit table. */
	w = words(m);
	df11_synth_long_codes(13, m, w);
	add(&v, &n, &cap, "codes up to 15 bits", w, m);
	cuda_case *c = add(&v, &n, &cap, "codes up to 15 bits, w6 b2",
			   copy_words(w, m), m);
	c->opt.window_log2 = 6;
	c->opt.block_log2 = 2;

	/* A realistic matrix in layouts where a thread owns several windows
	 * (block_log2 8 and the maximum 12) and where an item holds many blocks. */
	m = 3u << 20;
	w = words(m);
	df11_synth_matrix(21, 3 * 1024, 1024, 0.02f, w);
	add(&v, &n, &cap, "3M matrix default layout", w, m);
	c = add(&v, &n, &cap, "3M matrix b8", copy_words(w, m), m);
	c->opt.block_log2 = 8;
	c = add(&v, &n, &cap, "3M matrix w8 b12", copy_words(w, m), m);
	c->opt.window_log2 = 8;
	c->opt.block_log2 = 12;
	c = add(&v, &n, &cap, "3M matrix w14 b1", copy_words(w, m), m);
	c->opt.window_log2 = 14;
	c->opt.block_log2 = 1;

	*cases_ret = v;
	return n;
}

void cuda_cases_free(cuda_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(cases[i].data);
	free(cases);
}

size_t cuda_case_ranges(uint64_t n, const uint8_t *block_starts,
			uint64_t n_blocks, uint64_t seed, uint64_t (*ranges)[2],
			size_t max)
{
	size_t k = 0;
#define PUT(a, c)                                                        \
	do {                                                             \
		uint64_t a_ = (a), c_ = (c);                             \
		if (k < max && a_ < n && c_ > 0 && c_ <= n - a_) {       \
			ranges[k][0] = a_;                               \
			ranges[k][1] = c_;                               \
			k++;                                             \
		}                                                        \
	} while (0)
	if (n == 0)
		return 0;
	PUT(0, n < 7 ? n : 7);
	PUT(n > 1000 ? n - 1000 : 0, n > 1000 ? 1000 : n);
	PUT(n / 3, n / 3);
	PUT(n - 1, 1);
	PUT(n / 2, 1);
	PUT(1, n - 1);
	/* Around block boundaries: the element before, the first, short runs
	 * across, unaligned to 8 on both ends. */
	for (uint64_t j = 1; block_starts && j < n_blocks && j < 6; j++) {
		uint64_t b = df11_rd64(block_starts + 8 * (n_blocks * j / 6));
		PUT(b ? b - 1 : 0, 1);
		PUT(b, 1);
		PUT(b > 5 ? b - 5 : 0, 13);
		PUT(b > 333 ? b - 333 : 0, 1001);
	}
	df11_rng r;
	df11_rng_seed(&r, seed);
	while (k < max) {
		uint64_t a = df11_rng_next(&r) % n;
		uint64_t lim = n - a;
		uint64_t c = 1 + df11_rng_next(&r) % (lim < 20000 ? lim : 20000);
		PUT(a, c);
	}
#undef PUT
	return k;
}

const char *cuda_case_diff(const uint16_t *want, const uint16_t *got,
			   uint64_t n)
{
	static char msg[96];
	msg[0] = 0;
	if (n && memcmp(want, got, n * 2) != 0) {
		uint64_t i = 0;
		while (want[i] == got[i])
			i++;
		snprintf(msg, sizeof msg, "element %llu is 0x%04x, expected 0x%04x",
			 (unsigned long long)i, got[i], want[i]);
	}
	return msg;
}

void cuda_nemo_layer(unsigned div, cuda_matrix out[7])
{
	const uint64_t h = 5120, inter = 14336;
	const cuda_matrix m[7] = {
		{"q_proj", 4096, h},      {"k_proj", 1024, h},
		{"v_proj", 1024, h},      {"o_proj", h, 4096},
		{"gate_proj", inter, h},  {"up_proj", inter, h},
		{"down_proj", h, inter},
	};
	for (int i = 0; i < 7; i++) {
		out[i] = m[i];
		out[i].rows /= div;
		out[i].cols /= div;
	}
}
