/* The CPU run of the GPU decoder: runs the kernel's per-thread functions
 * (cuda/decode_kernel.h) for every (CTA, thread) of a launch, in the order
 * of the kernel's phases, over the launch parameters that libdf11_cuda
 * builds (cuda/plan.c), and compares with the reference decoder byte for
 * byte. Every store goes through a hook that checks it lands inside the
 * job's output, once: two threads writing one element would be a race on
 * the GPU, an element nobody writes a hole. Needs no GPU and no nvcc. */
#include <setjmp.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Store hook: see shadow_mark. */
static void shadow_mark(const uint16_t *p, unsigned n);
#define DF11K_HOST_STORE_HOOK(p, n) shadow_mark((p), (n))

/* Ring hook: every stream word a staged lane reads must be in its ring. */
static void ring_check(uint64_t filled, uint64_t w);
#define DF11K2_HOST_RING_HOOK(filled, w) ring_check((filled), (w))

#include "cuda/decode_kernel.h"
#include "cuda/decode_staged.h"
#include "cuda/kernels.h"
#include "cuda/plan.h"
#include "codec/parse.h"
#include "synth/synth.h"
#include "tests/cuda_cases.h"
#include "tests/cuda_upload.h"
#include "tests/testutil.h"

/* ------------------------------------------------------ store tracking */

#define MAX_REGIONS DF11K_MAX_JOBS
static struct {
	const uint16_t *dst[MAX_REGIONS];
	uint64_t count[MAX_REGIONS];
	uint8_t *hits[MAX_REGIONS]; /* stores per element */
	int n;
	uint64_t stray; /* stores outside every region */
} shadow;

static void shadow_reset(void)
{
	for (int i = 0; i < shadow.n; i++)
		free(shadow.hits[i]);
	memset(&shadow, 0, sizeof shadow);
}

static void shadow_add(const uint16_t *dst, uint64_t count)
{
	assert_true(shadow.n < MAX_REGIONS);
	shadow.dst[shadow.n] = dst;
	shadow.count[shadow.n] = count;
	shadow.hits[shadow.n] = calloc(count + 1, 1);
	assert_non_null(shadow.hits[shadow.n]);
	shadow.n++;
}

static void shadow_mark(const uint16_t *p, unsigned n)
{
	for (int r = 0; r < shadow.n; r++) {
		if (p >= shadow.dst[r] && p + n <= shadow.dst[r] + shadow.count[r]) {
			for (unsigned i = 0; i < n; i++) {
				uint8_t *h = &shadow.hits[r][p - shadow.dst[r] + i];
				if (*h < 255)
					(*h)++;
			}
			return;
		}
	}
	shadow.stray++;
}

/* Every element of region r stored exactly once (if `complete`), or at
 * most once (corrupt input); nothing outside. */
static void shadow_check(int r, int complete, const char *what)
{
	if (shadow.stray)
		fail_msg("%s: %llu stores outside the output", what,
			 (unsigned long long)shadow.stray);
	for (uint64_t i = 0; i < shadow.count[r]; i++) {
		uint8_t h = shadow.hits[r][i];
		if (h > 1 || (complete && h != 1))
			fail_msg("%s: element %llu stored %u times", what,
				 (unsigned long long)i, h);
	}
}

/* ------------------------------------------------------------ launch */

/* What one CTA of the decode kernel does (cuda/df11_cuda.cu,
 * df11k_decode_kernel), thread by thread per phase; __syncthreads() falls
 * between phases. Threads run in reverse order to show that no thread
 * depends on another's stores. */
static void run_cta(const df11k_batch *b, uint32_t cta, uint32_t *err)
{
	static df11k_smem sh;
	const df11k_job *J = &b->job[df11k_find_job(b, cta)];
	uint64_t item = J->item_lo + (cta - J->item_base);
	if (J->t.codec != DF11_CODEC_HUFFMAN) {
		for (uint32_t tid = DF11K_THREADS; tid-- > 0;)
			df11k_plain(J, item, tid);
		return;
	}
	memset(&sh, 0xcd, sizeof sh);
	for (uint32_t tid = 0; tid < DF11K_THREADS; tid++)
		df11k_load_tables(&J->t, &sh, tid);
	for (uint32_t tid = DF11K_THREADS; tid-- > 0;)
		if (df11k_decode(J, &sh, item, tid))
			*err |= DF11K_ERR_INDEX;
}

static uint64_t ring_faults;
static void ring_check(uint64_t filled, uint64_t w)
{
	if (w >= filled || w + DF11K2_RING_WORDS < filled)
		ring_faults++;
}

/* The staged kernel's refill (df11k2_refill in df11_cuda.cu): the ballot
 * of the lanes that want a piece, then rounds of 8 pieces. */
static void staged_refill(const df11k_tensor *t, df11k2_warp *ws,
			  df11k2_lane *L)
{
	uint32_t need[32], mask = 0;
	for (uint32_t lane = 0; lane < 32; lane++) {
		uint64_t piece = 0;
		need[lane] = df11k2_lane_want(&L[lane], &piece);
		if (need[lane])
			ws->want[lane] = piece;
		mask |= need[lane] << lane;
	}
	while (mask) {
		for (uint32_t lane = 32; lane-- > 0;)
			df11k2_refill_part(t, ws, df11k2_refill_owner(mask, lane),
					   lane);
		mask = df11k2_refill_next(mask);
	}
	for (uint32_t lane = 0; lane < 32; lane++)
		if (need[lane])
			df11k2_lane_refilled(t, &L[lane]);
}

/* One warp of df11k2_decode_kernel, lane by lane per phase (__syncwarp
 * between phases; lanes in reverse order where they work alone). Returns
 * the number of steps. */
static uint32_t staged_warp(const df11k_job *J, uint64_t item,
			    df11k2_smem *sh, uint32_t warp, uint32_t *err)
{
	df11k2_lane L[32];
	df11k2_warp *ws = &sh->warp[warp];
	const df11k_sink sink = {J->dst, J->t.plane + J->first,
				 (int64_t)J->count, (int)J->vec_ok};
	uint32_t steps = 0;
	for (uint32_t lane = 0; lane < 32; lane++)
		df11k2_lane_init(J, item, 32 * warp + lane, &L[lane]);
	staged_refill(&J->t, ws, L);
	staged_refill(&J->t, ws, L);
	for (uint32_t lane = 32; lane-- > 0;)
		df11k2_lane_start(ws, lane, &L[lane]);
	for (;;) {
		int any = 0;
		for (uint32_t lane = 0; lane < 32; lane++)
			any |= L[lane].state == DF11K2_RUN;
		if (!any)
			break;
		steps++;
		for (uint32_t lane = 32; lane-- > 0;)
			df11k2_lane_step(&J->t, sh, ws, lane, &sink, &L[lane]);
		uint32_t sum = 0;
		for (uint32_t lane = 0; lane < 32; lane++) {
			sum += df11k2_lane_publish(ws, lane, &L[lane]);
			ws->incl[lane] = sum;
		}
		for (uint32_t lane = 32; lane-- > 0;)
			df11k2_flush(ws, &sink, lane);
		for (uint32_t lane = 0; lane < 32; lane++)
			df11k2_lane_flushed(&L[lane]);
		staged_refill(&J->t, ws, L);
	}
	for (uint32_t lane = 0; lane < 32; lane++)
		if (L[lane].bad)
			*err |= DF11K_ERR_INDEX;
	return steps;
}

/* One CTA of the staged kernel; warps in reverse order. */
static void run_cta_staged(const df11k_batch *b, uint32_t cta, uint32_t *err)
{
	static df11k2_smem sh;
	const df11k_job *J = &b->job[df11k_find_job(b, cta)];
	uint64_t item = J->item_lo + (cta - J->item_base);
	if (J->t.codec != DF11_CODEC_HUFFMAN) {
		for (uint32_t tid = DF11K_THREADS; tid-- > 0;)
			df11k2_plain(J, item, tid);
		return;
	}
	memset(&sh, 0xcd, sizeof sh);
	for (uint32_t tid = 0; tid < DF11K_THREADS; tid++)
		df11k2_load_tables(&J->t, &sh, tid);
	for (uint32_t w = DF11K2_WARPS; w-- > 0;)
		staged_warp(J, item, &sh, w, err);
}

/* The kernel check_batch and run_launch use (both, in turn). */
static int g_kernel = DF11_CUDA_KERNEL_STAGED;

/* CTAs in reverse order, too: the GPU runs them in any order. */
static uint32_t run_launch(const df11k_batch *b)
{
	uint32_t err = 0;
	ring_faults = 0;
	for (uint32_t cta = b->n_items; cta-- > 0;) {
		if (g_kernel == DF11_CUDA_KERNEL_STAGED)
			run_cta_staged(b, cta, &err);
		else
			run_cta(b, cta, &err);
	}
	if (ring_faults)
		fail_msg("staged kernel: %llu stream words read outside the "
			 "lane's ring", (unsigned long long)ring_faults);
	return err;
}


/* Output buffer with guard words on both sides; misalign shifts dst by one
 * word so that the 16-byte vector stores are off. */
typedef struct outbuf {
	uint16_t *mem, *dst;
	uint64_t count;
} outbuf;

#define GUARD 16
static void outbuf_init(outbuf *o, uint64_t count, int misalign)
{
	o->mem = aligned_alloc(16, ((count + 2 * GUARD) * 2 + 15) & ~(size_t)15);
	assert_non_null(o->mem);
	memset(o->mem, 0xa5, (count + 2 * GUARD) * 2);
	o->dst = o->mem + GUARD + (misalign ? 1 : 0);
	o->count = count;
}

static void outbuf_check(const outbuf *o, const uint16_t *want, const char *what)
{
	const char *d = cuda_case_diff(want, o->dst, o->count);
	if (d[0])
		fail_msg("%s: %s", what, d);
	for (uint16_t *p = o->mem; p < o->dst; p++)
		if (*p != 0xa5a5)
			fail_msg("%s: guard before the output overwritten", what);
	for (int i = 0; i < GUARD - 1; i++)
		if (o->dst[o->count + i] != 0xa5a5)
			fail_msg("%s: guard after the output overwritten", what);
}

static void check_batch1(const emul_tensor *const *T,
			 const uint64_t (*ranges)[2], size_t n, int misalign,
			 const char *what);

/* Decodes the given ranges of T as one launch of each kernel and checks
 * each. */
static void check_batch(const emul_tensor *const *T, const uint64_t (*ranges)[2],
			size_t n, int misalign, const char *what)
{
	static const int kernels[2] = {DF11_CUDA_KERNEL_WINDOW,
				       DF11_CUDA_KERNEL_STAGED};
	for (int k = 0; k < 2; k++) {
		char msg[160];
		snprintf(msg, sizeof msg, "%s [%s kernel]", what,
			 k ? "staged" : "window");
		g_kernel = kernels[k];
		check_batch1(T, ranges, n, misalign, msg);
	}
	g_kernel = DF11_CUDA_KERNEL_STAGED;
}

static void check_batch1(const emul_tensor *const *T,
			 const uint64_t (*ranges)[2], size_t n, int misalign,
			 const char *what)
{
	df11k_batch b;
	outbuf o[DF11K_MAX_JOBS];
	memset(&b, 0, sizeof b);
	shadow_reset();
	assert_true(n <= DF11K_MAX_JOBS);
	for (size_t k = 0; k < n; k++) {
		df11k_job J;
		outbuf_init(&o[k], ranges[k][1], misalign);
		assert_int_equal(df11k_job_init(&J, &T[k]->t, T[k]->P.block_starts,
						ranges[k][0], ranges[k][1],
						o[k].dst, g_kernel), DF11_OK);
		assert_int_equal(df11k_batch_add(&b, &J), DF11_OK);
		shadow_add(o[k].dst, ranges[k][1]);
	}
	uint32_t err = run_launch(&b);
	if (err)
		fail_msg("%s: kernel error flag %u", what, err);
	for (size_t k = 0; k < n; k++) {
		char msg[200];
		snprintf(msg, sizeof msg, "%s, elements %llu+%llu", what,
			 (unsigned long long)ranges[k][0],
			 (unsigned long long)ranges[k][1]);
		outbuf_check(&o[k], T[k]->ref + ranges[k][0], msg);
		shadow_check((int)k, 1, msg);
		free(o[k].mem);
	}
	shadow_reset();
}

static void check_tensor(const emul_tensor *T, const char *name)
{
	uint64_t full[1][2] = {{0, T->n}};
	const emul_tensor *one[DF11K_MAX_JOBS];
	for (int k = 0; k < DF11K_MAX_JOBS; k++)
		one[k] = T;
	if (T->n == 0)
		return; /* nothing to launch; the API returns at once */
	check_batch(one, (const uint64_t (*)[2])full, 1, 0, name);
	check_batch(one, (const uint64_t (*)[2])full, 1, 1, name);
	uint64_t ranges[48][2];
	size_t nr = cuda_case_ranges(T->n, T->P.block_starts, T->P.layout.n_blocks,
				     T->n, ranges, 48);
	/* Ranges one launch each, then DF11K_MAX_JOBS per launch. */
	for (size_t k = 0; k < nr; k++)
		check_batch(one, (const uint64_t (*)[2])&ranges[k], 1, (int)(k & 1),
			    name);
	for (size_t k = 0; k < nr; k += DF11K_MAX_JOBS) {
		size_t m = nr - k < DF11K_MAX_JOBS ? nr - k : DF11K_MAX_JOBS;
		check_batch(one, (const uint64_t (*)[2])&ranges[k], m, 0, name);
	}
}

/* ------------------------------------------------------------- tests */

static void test_codec_cases(void **state)
{
	(void)state;
	cuda_case *cases;
	size_t n = cuda_cases_make(&cases);
	for (size_t i = 0; i < n; i++) {
		emul_tensor T;
		tensor_load(&T, cases[i].data, cases[i].n, &cases[i].opt);
		check_tensor(&T, cases[i].name);
		tensor_free(&T);
	}
	cuda_cases_free(cases, n);
}

/* Jobs of different tensors and codecs in one launch. */
static void test_mixed_batch(void **state)
{
	(void)state;
	cuda_case *cases;
	size_t n = cuda_cases_make(&cases);
	emul_tensor T[DF11K_MAX_JOBS];
	const emul_tensor *p[DF11K_MAX_JOBS] = {0};
	uint64_t ranges[DF11K_MAX_JOBS][2];
	size_t m = 0;
	/* Every third nonempty case, whole and in a slice. */
	for (size_t i = 0; i < n && m + 1 < DF11K_MAX_JOBS; i += 3) {
		if (cases[i].n == 0)
			continue;
		tensor_load(&T[m], cases[i].data, cases[i].n, &cases[i].opt);
		p[m] = p[m + 1] = &T[m];
		ranges[m][0] = 0;
		ranges[m][1] = cases[i].n;
		ranges[m + 1][0] = cases[i].n / 4;
		ranges[m + 1][1] = cases[i].n / 2 ? cases[i].n / 2 : 1;
		m += 2;
	}
	check_batch(p, (const uint64_t (*)[2])ranges, m, 0, "mixed batch");
	for (size_t k = 0; k < m; k += 2)
		tensor_free(&T[k]);
	cuda_cases_free(cases, n);
}

/* A Mistral-Nemo layer's seven matrices with every dimension divided by 8
 * (the full layer runs in the GPU test), decoded as one batch. */
static void test_nemo_layer_scaled(void **state)
{
	(void)state;
	cuda_matrix mat[7];
	cuda_nemo_layer(8, mat);
	emul_tensor T[7];
	const emul_tensor *p[7];
	uint64_t ranges[7][2];
	for (int i = 0; i < 7; i++) {
		uint64_t n = mat[i].rows * mat[i].cols;
		uint16_t *w = malloc(n * 2);
		assert_non_null(w);
		df11_synth_matrix(100 + (uint64_t)i, mat[i].rows, mat[i].cols, 0.02f, w);
		tensor_load(&T[i], w, n, NULL);
		free(w);
		p[i] = &T[i];
		ranges[i][0] = 0;
		ranges[i][1] = n;
	}
	check_batch(p, (const uint64_t (*)[2])ranges, 7, 0, "nemo layer / 8");
	/* Embedding-style rows: rows 3, 17 and 100 of gate_proj. */
	uint64_t rows[3][2];
	const emul_tensor *g[3] = {&T[4], &T[4], &T[4]};
	uint64_t pick[3] = {3, 17, 100};
	for (int k = 0; k < 3; k++) {
		rows[k][0] = pick[k] * mat[4].cols;
		rows[k][1] = mat[4].cols;
	}
	check_batch(g, (const uint64_t (*)[2])rows, 3, 0, "nemo rows");
	for (int i = 0; i < 7; i++)
		tensor_free(&T[i]);
}

/* A stream that disagrees with its index after df11_parse accepted it:
 * the upload's count launch rejects it; with a stale offset table the
 * decode launch flags it and still writes nothing out of bounds. */
static void test_corrupt_index_flagged(void **state)
{
	(void)state;
	uint64_t n = 200000;
	uint16_t *w = malloc(n * 2);
	assert_non_null(w);
	df11_synth_matrix(5, 200, 1000, 0.02f, w);
	df11_encode_options opt = {.window_log2 = 8, .block_log2 = 3};
	emul_tensor T;
	tensor_load(&T, w, n, &opt);
	const emul_tensor *p[1] = {&T};
	uint64_t full[1][2] = {{0, n}};
	df11_parsed P;
	uint32_t *win_off = malloc(4 * T.P.layout.n_windows);
	uint32_t *run_off = malloc(4 * T.t.n_runs);
	uint16_t *out = malloc(n * 2);
	assert_true(win_off && run_off && out);
	df11k_tensor t = T.t;
	t.win_off = win_off;
	t.run_off = run_off;

	/* A gap moved inside its valid range. */
	uint8_t *gaps = T.enc + T.P.layout.off_gaps;
	uint64_t k = 37;
	uint32_t g = df11_gap(gaps, k);
	uint32_t g2 = g == 0 ? 1 : g - 1;
	gaps[k >> 1] = (uint8_t)((gaps[k >> 1] & ~(0xfu << ((k & 1) * 4))) |
				 (g2 << ((k & 1) * 4)));
	assert_int_equal(df11_parse(T.enc, T.size, &P), DF11_OK);
	assert_int_equal(run_count(&t, win_off), DF11K_ERR_INDEX);
	/* The window kernel decoding with the offsets made before: flagged,
	 * in bounds. (The staged kernel reads its own entry points, not the
	 * gaps, after upload.) */
	df11k_batch b;
	df11k_job J;
	memset(&b, 0, sizeof b);
	shadow_reset();
	shadow_add(out, n);
	g_kernel = DF11_CUDA_KERNEL_WINDOW;
	assert_int_equal(df11k_job_init(&J, &T.t, T.P.block_starts, 0, n, out,
					g_kernel), DF11_OK);
	assert_int_equal(df11k_batch_add(&b, &J), DF11_OK);
	assert_int_equal(run_launch(&b), DF11K_ERR_INDEX);
	shadow_check(0, 0, "corrupt gap");
	g_kernel = DF11_CUDA_KERNEL_STAGED;
	gaps[k >> 1] = (uint8_t)((gaps[k >> 1] & ~(0xfu << ((k & 1) * 4))) |
				 (g << ((k & 1) * 4)));

	/* The staged kernel with an entry point moved by one bit, or by one
	 * element: flagged, in bounds. */
	for (int what = 0; what < 2; what++) {
		df11k_tensor ts = T.t;
		memcpy(run_off, T.run_off, 4 * T.t.n_runs);
		ts.run_off = run_off;
		uint64_t r = T.t.n_runs / 3;
		uint32_t e = run_off[r], gp = e >> DF11K2_RUN_GAP_SHIFT;
		run_off[r] = what ? e + 1
				  : (e & DF11K2_RUN_COUNT_MASK) |
					    ((gp ? gp - 1 : 1) << DF11K2_RUN_GAP_SHIFT);
		memset(&b, 0, sizeof b);
		shadow_reset();
		shadow_add(out, n);
		assert_int_equal(df11k_job_init(&J, &ts, T.P.block_starts, 0, n,
						out, g_kernel), DF11_OK);
		assert_int_equal(df11k_batch_add(&b, &J), DF11_OK);
		assert_int_equal(run_launch(&b), DF11K_ERR_INDEX);
		/* A count moved by one makes two lanes store one element
		 * each (flagged garbage); nothing lands outside. */
		if (what == 0)
			shadow_check(0, 0, "corrupt entry point");
		else if (shadow.stray)
			fail_msg("corrupt entry count: %llu stray stores",
				 (unsigned long long)shadow.stray);
	}

	/* A block start moved by one (still nondecreasing), at an item's
	 * start and inside one. */
	uint8_t *bs = T.enc + T.P.layout.off_block_starts;
	for (uint64_t j = 2; j <= 8; j += 6) {
		uint64_t v = df11_rd64(bs + 8 * j);
		df11_wr64(bs + 8 * j, v + 1);
		assert_int_equal(df11_parse(T.enc, T.size, &P), DF11_OK);
		assert_int_equal(run_count(&t, win_off), DF11K_ERR_INDEX);
		df11_wr64(bs + 8 * j, v);
	}

	/* Restored: counts and decodes again. */
	assert_int_equal(run_count(&t, win_off), 0);
	assert_memory_equal(win_off, T.win_off, 4 * T.P.layout.n_windows);
	assert_int_equal(run_entries(&t, run_off), 0);
	assert_memory_equal(run_off, T.run_off, 4 * T.t.n_runs);
	check_batch(p, (const uint64_t (*)[2])full, 1, 0, "restored");

	/* Stream bit flips: rejected at upload, or decoded with every element
	 * stored exactly once (and no over-read: ASan in the sanitizer build). */
	uint8_t *stream = T.enc + T.P.layout.off_stream;
	int flagged = 0, total = 0;
	for (uint64_t bit = 5; bit < 8 * T.P.layout.stream_bytes; bit += 4099) {
		stream[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		uint32_t err = run_count(&t, win_off);
		flagged += err != 0;
		total++;
		if (!err) {
			assert_int_equal(run_entries(&t, run_off), 0);
			for (int kern = 0; kern < 2; kern++) {
				df11k_job Jf;
				g_kernel = kern ? DF11_CUDA_KERNEL_STAGED
						: DF11_CUDA_KERNEL_WINDOW;
				memset(&b, 0, sizeof b);
				shadow_reset();
				shadow_add(out, n);
				assert_int_equal(df11k_job_init(&Jf, &t,
								T.P.block_starts,
								0, n, out, g_kernel),
						 DF11_OK);
				assert_int_equal(df11k_batch_add(&b, &Jf), DF11_OK);
				assert_int_equal(run_launch(&b), 0);
				shadow_check(0, 1, "stream bit flip");
			}
		}
		stream[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	print_message("stream bit flips rejected by the count launch: %d of %d\n",
		      flagged, total);
	assert_true(flagged > 0);
	shadow_reset();
	free(out);
	free(win_off);
	free(run_off);
	free(w);
	tensor_free(&T);
}

/* Random layouts (window 2^6..2^16 bits, block 2^1..2^12 windows, code
 * limit 2..15) over random skewed data, each checked whole and in random
 * ranges: the decomposition for parameter mixes no fixed case has. */
static void test_random_layouts(void **state)
{
	(void)state;
	df11_rng r;
	df11_rng_seed(&r, 2026);
	for (int it = 0; it < 40; it++) {
		df11_encode_options opt = {0};
		opt.window_log2 = 6 + (int)(df11_rng_next(&r) % 11);
		int bmax = DF11_MAX_BLOCK_BITS_LOG2 - opt.window_log2;
		if (bmax > DF11_MAX_BLOCK_LOG2)
			bmax = DF11_MAX_BLOCK_LOG2;
		opt.block_log2 = 1 + (int)(df11_rng_next(&r) % (uint64_t)bmax);
		opt.max_code_len = 2 + (int)(df11_rng_next(&r) % 14);
		uint64_t n = 1 + df11_rng_next(&r) % 300000;
		uint16_t *w = malloc(n * 2);
		assert_non_null(w);
		/* Exponents from a geometric distribution of random spread, so
		 * that code lengths vary from 1 bit to the limit. */
		double p = 0.05 + 0.9 * df11_rng_uniform(&r);
		/* No more exponents than codes of max_code_len bits. */
		unsigned top = 120 + (1u << opt.max_code_len) - 1;
		if (top > 250)
			top = 250;
		for (uint64_t i = 0; i < n; i++) {
			unsigned e = 120;
			while (e < top && df11_rng_uniform(&r) > p)
				e++;
			w[i] = (uint16_t)((e << 7) | (df11_rng_next(&r) & 0x807f));
		}
		emul_tensor T;
		tensor_load(&T, w, n, &opt);
		char name[96];
		snprintf(name, sizeof name, "random layout %d: n %llu w%d b%d c%d",
			 it, (unsigned long long)n, opt.window_log2, opt.block_log2,
			 opt.max_code_len);
		const emul_tensor *p16[DF11K_MAX_JOBS];
		for (int k = 0; k < DF11K_MAX_JOBS; k++)
			p16[k] = &T;
		uint64_t ranges[DF11K_MAX_JOBS][2];
		ranges[0][0] = 0;
		ranges[0][1] = n;
		for (int k = 1; k < DF11K_MAX_JOBS; k++) {
			ranges[k][0] = df11_rng_next(&r) % n;
			ranges[k][1] = 1 + df11_rng_next(&r) % (n - ranges[k][0]);
		}
		check_batch(p16, (const uint64_t (*)[2])ranges, DF11K_MAX_JOBS,
			    it & 1, name);
		tensor_free(&T);
		free(w);
	}
}

/* A table in device memory overwritten after upload (every entry a
 * code of length 0, or all zero with an empty slow-path table): no
 * lookup advances. Both kernels and the count launch must flag the tensor
 * and stop, not hang, and store nothing outside the output. */
static void test_corrupt_tables_stop(void **state)
{
	(void)state;
	uint64_t n = 100000;
	uint16_t *w = malloc(n * 2), *out = malloc(n * 2);
	uint32_t *win_off = malloc(4 * 4096);
	assert_true(w && out && win_off);
	df11_synth_matrix(8, 100, 1000, 0.02f, w);
	emul_tensor T;
	tensor_load(&T, w, n, NULL);
	assert_int_equal(T.P.layout.codec, DF11_CODEC_HUFFMAN);
	assert_true(T.P.layout.n_windows <= 4096);
	uint8_t *saved = malloc(DF11K_TABLES_SIZE);
	assert_non_null(saved);
	memcpy(saved, T.tables, DF11K_TABLES_SIZE);
	for (int mode = 0; mode < 2; mode++) {
		uint32_t *m1 = (uint32_t *)(void *)(T.tables + DF11K_TABLES_MULTI);
		uint32_t *m2 = (uint32_t *)(void *)(T.tables + DF11K_TABLES_MULTI2);
		if (mode == 0) { /* one code of length 0 per entry */
			for (uint32_t i = 0; i < DF11K_TABLE_ENTRIES; i++)
				m1[i] = df11k_multi_entry(0x7f, 0, 1);
			for (uint32_t i = 0; i < DF11K2_TABLE_ENTRIES; i++)
				m2[i] = df11k_multi_entry(0x7f, 0, 1);
		} else { /* all zero: the slow path finds no code */
			memset(T.tables, 0, DF11K_TABLES_SIZE);
		}
		df11k_tensor t = T.t;
		t.win_off = win_off;
		assert_int_equal(run_count(&t, win_off), DF11K_ERR_INDEX);
		for (int k = 0; k < 2; k++) {
			df11k_batch b;
			df11k_job J;
			memset(&b, 0, sizeof b);
			shadow_reset();
			shadow_add(out, n);
			g_kernel = k ? DF11_CUDA_KERNEL_STAGED : DF11_CUDA_KERNEL_WINDOW;
			assert_int_equal(df11k_job_init(&J, &T.t, T.P.block_starts, 0,
							n, out, g_kernel), DF11_OK);
			assert_int_equal(df11k_batch_add(&b, &J), DF11_OK);
			assert_int_equal(run_launch(&b), DF11K_ERR_INDEX);
			shadow_check(0, 0, "corrupt table");
		}
		g_kernel = DF11_CUDA_KERNEL_STAGED;
		memcpy(T.tables, saved, DF11K_TABLES_SIZE);
	}
	shadow_reset();
	free(saved);
	free(win_off);
	free(out);
	free(w);
	tensor_free(&T);
}

/* ------------------------------------------- 64-bit element indices */

/* A synthetic tensor of 2^32 + 2^20 + 12345 elements whose code has two
 * exponents of one bit each (0x7e is code 0, 0x7f code 1): every window
 * holds W codes, every gap is 0 and the index is arithmetic, so the
 * encoded tensor (4.8 GB) and the output (8.6 GB) can live in sparse
 * mappings of which only the pages near the boundaries are touched. The
 * launches are whole-tensor jobs of which only the CTAs of the work items
 * around elements 2^31 and 2^32 and the last item run: element, plane and
 * output offsets past 2^31 and 2^32, as the GPU sees them. */
static void *sparse_map(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void test_index_past_4g(void **state)
{
	(void)state;
	const uint64_t n = (1ull << 32) + (1ull << 20) + 12345;
	df11_layout L;
	memset(&L, 0, sizeof L);
	L.codec = DF11_CODEC_HUFFMAN;
	L.n_elems = n;
	L.stream_bits = n;
	L.max_code_len = 1;
	L.window_log2 = 11;
	L.block_log2 = 6;
	L.table_size = 3;
	assert_int_equal(df11_layout_compute(&L), 0);
	uint8_t *enc = sparse_map(L.total_size);
	uint16_t *dst = sparse_map(2 * n);
	if (!enc || !dst) {
		if (enc)
			munmap(enc, L.total_size);
		skip(); /* no address space for sparse mappings here */
	}
	memcpy(enc, DF11_TENSOR_MAGIC, 4);
	enc[4] = DF11_CODEC_HUFFMAN;
	enc[5] = 1;
	enc[6] = 11;
	enc[7] = 6;
	df11_wr64(enc + 8, n);
	df11_wr64(enc + 16, n);
	df11_wr16(enc + 24, 3);
	enc[L.off_table] = 0x7e;
	enc[L.off_table + 1] = 1;
	enc[L.off_table + 2] = 0x11;
	for (uint64_t j = 0; j < L.n_blocks; j++)
		df11_wr64(enc + L.off_block_starts + 8 * j,
			  j << (L.window_log2 + L.block_log2));
	df11_parsed P;
	assert_int_equal(df11_parse(enc, L.total_size, &P), DF11_OK);

	uint8_t *tables = malloc(DF11K_TABLES_SIZE);
	uint32_t *win_off = malloc(4 * L.n_windows);
	uint32_t *run_off = malloc(4 * df11k_n_runs(&P));
	assert_true(tables && win_off && run_off);
	memset(win_off, 0xee, 4 * L.n_windows);
	memset(run_off, 0xee, 4 * df11k_n_runs(&P));
	df11k_build_tables(&P, tables);
	df11k_tensor t;
	df11k_tensor_init(&t, &P, enc, tables, win_off, run_off);

	/* The work items checked, and random stream and sm bytes in them. */
	const uint64_t item_elems = (uint64_t)1 << (t.item_log2 + L.window_log2);
	const uint64_t last = (L.n_windows - 1) >> t.item_log2;
	uint64_t items[6] = {(1ull << 31) / item_elems - 1, (1ull << 31) / item_elems,
			     (1ull << 32) / item_elems - 1, (1ull << 32) / item_elems,
			     last - 1, last};
	df11_rng r;
	df11_rng_seed(&r, 32);
	for (int i = 0; i < 6; i++) {
		uint64_t a = items[i] * item_elems, b = a + item_elems;
		if (b > n)
			b = n;
		for (uint64_t e = a; e < b; e += 8) {
			uint64_t v = df11_rng_next(&r);
			memcpy(enc + L.off_sm + e, &v, 8);
			if (e % 64 == 0) {
				v = df11_rng_next(&r);
				memcpy(enc + L.off_stream + e / 8, &v, 8);
			}
		}
	}
	/* Bits past stream_bits are zero (the format says so). */
	for (uint64_t e = n; e < ((n + 63) & ~63ull); e++)
		enc[L.off_stream + e / 8] &= (uint8_t)~(1u << (e % 8));

	/* The count launch over those items: the offsets are arithmetic. */
	df11k_batch b;
	df11k_job J;
	uint32_t err = 0;
	memset(&b, 0, sizeof b);
	assert_int_equal(df11k_count_job_init(&J, &t, win_off), DF11_OK);
	assert_int_equal(df11k_batch_add(&b, &J), DF11_OK);
	for (int i = 0; i < 6; i++)
		run_count_cta(&b, (uint32_t)items[i], &err);
	assert_int_equal(err, 0);
	for (int i = 0; i < 6; i++)
		for (uint64_t k = items[i] << t.item_log2;
		     k < ((items[i] + 1) << t.item_log2) && k < L.n_windows; k++)
			assert_int_equal(win_off[k],
					 (k & ((1u << t.item_log2) - 1)) << L.window_log2);
	/* The entry launch's threads for those windows and one after each
	 * item (the last lane of an item reads the next run's entry): one
	 * code per bit, so a run's entry is its distance from its block's
	 * start, gap 0. */
	static df11k_smem esh;
	memset(&esh, 0xcd, sizeof esh);
	for (uint32_t tid = 0; tid < DF11K_THREADS; tid++)
		df11k_load_tables(&t, &esh, tid);
	for (int i = 0; i < 6; i++) {
		for (uint64_t k = items[i] << t.item_log2;
		     k <= ((items[i] + 1) << t.item_log2) && k < L.n_windows; k++)
			df11k2_window_entries(&t, &esh, k, run_off, &err);
		for (uint64_t ru = (items[i] << t.item_log2) << (11 - t.run_log2);
		     ru < (((items[i] + 1) << t.item_log2) << (11 - t.run_log2)) &&
		     ru < t.n_runs; ru++) {
			uint64_t bit = ru << t.run_log2, b0 = bit & ~((1ull << 17) - 1);
			if (bit < n) /* one code per bit */
				assert_int_equal(run_off[ru], bit - b0);
			else /* past the stream's end: no code starts */
				assert_int_equal(run_off[ru],
						 (n - b0) | (DF11_GAP_NONE
							     << DF11K2_RUN_GAP_SHIFT));
		}
	}
	assert_int_equal(err, 0);

	/* Staged CTAs: DF11K_THREADS runs each; those of the same elements. */
	const uint64_t stg_elems = (uint64_t)DF11K_THREADS << t.run_log2;
	for (int kern = 0; kern < 2; kern++) {
		g_kernel = kern ? DF11_CUDA_KERNEL_STAGED : DF11_CUDA_KERNEL_WINDOW;
		memset(&b, 0, sizeof b);
		assert_int_equal(df11k_job_init(&J, &t, P.block_starts, 0, n, dst,
						g_kernel), DF11_OK);
		assert_int_equal(J.n_items, kern ? (t.n_runs + DF11K_THREADS - 1) /
							   DF11K_THREADS
						 : last + 1);
		assert_int_equal(df11k_batch_add(&b, &J), DF11_OK);
		err = 0;
		ring_faults = 0;
		for (int i = 0; i < 6; i++) {
			if (g_kernel == DF11_CUDA_KERNEL_STAGED) {
				uint64_t a = items[i] * item_elems;
				for (uint64_t c = a / stg_elems;
				     c < (a + item_elems) / stg_elems && c < J.n_items; c++)
					run_cta_staged(&b, (uint32_t)c, &err);
			} else {
				run_cta(&b, (uint32_t)items[i], &err);
			}
		}
		assert_int_equal(err, 0);
		assert_int_equal(ring_faults, 0);
		for (int i = 0; i < 6; i++) {
			uint64_t a = items[i] * item_elems, e_end = a + item_elems;
			if (e_end > n)
				e_end = n;
			/* One element on each side of the item must be
			 * untouched, unless a checked item is there. */
			int left = 0, right = 0;
			for (int j = 0; j < 6; j++) {
				left |= items[j] + 1 == items[i];
				right |= items[j] == items[i] + 1;
			}
			if (!right && e_end < n)
				assert_int_equal(dst[e_end], 0);
			if (!left)
				assert_int_equal(dst[a - 1], 0);
			for (uint64_t e = a; e < e_end; e++) {
				uint32_t bit = (enc[L.off_stream + e / 8] >> (e % 8)) & 1u;
				uint16_t want = df11_bf16_join(0x7eu + bit,
							       enc[L.off_sm + e]);
				if (dst[e] != want)
					fail_msg("%s kernel: element %llu is 0x%04x, "
						 "expected 0x%04x",
						 kern ? "staged" : "window",
						 (unsigned long long)e, dst[e], want);
			}
		}
		for (int i = 0; i < 6; i++) /* clear for the next kernel */
			memset(dst + items[i] * item_elems, 0,
			       2 * (items[i] == last ? n - last * item_elems
						     : item_elems));
	}
	g_kernel = DF11_CUDA_KERNEL_STAGED;
	free(tables);
	free(win_off);
	free(run_off);
	munmap(dst, 2 * n);
	munmap(enc, L.total_size);
}

/* The 16-byte join of 8 lanes equals df11_bf16_join lane by lane. */
static void test_join2(void **state)
{
	(void)state;
	df11_rng r;
	df11_rng_seed(&r, 3);
	for (int i = 0; i < 100000; i++) {
		uint64_t e = df11_rng_next(&r), s = df11_rng_next(&r);
		uint32_t w = df11k_join2(e, s);
		assert_int_equal(w & 0xffff,
				 df11_bf16_join(e & 0xff, s & 0xff));
		assert_int_equal(w >> 16,
				 df11_bf16_join((e >> 8) & 0xff, (s >> 8) & 0xff));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join2),
		cmocka_unit_test(test_codec_cases),
		cmocka_unit_test(test_mixed_batch),
		cmocka_unit_test(test_random_layouts),
		cmocka_unit_test(test_nemo_layer_scaled),
		cmocka_unit_test(test_corrupt_index_flagged),
		cmocka_unit_test(test_corrupt_tables_stop),
		cmocka_unit_test(test_index_past_4g),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
