/* The CPU run of libdf11_cuda's upload (cuda_upload.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cuda/decode_kernel.h"
#include "cuda/decode_staged.h"
#include "cuda/plan.h"
#include "tests/cuda_upload.h"
#include "tests/testutil.h"

/* One CTA of the count kernel (df11k_count_kernel), run at upload. */
void run_count_cta(const df11k_batch *b, uint32_t cta, uint32_t *err)
{
	static df11k_smem sh;
	const df11k_job *J = &b->job[df11k_find_job(b, cta)];
	uint64_t item = J->item_lo + (cta - J->item_base);
	memset(&sh, 0xcd, sizeof sh);
	for (uint32_t tid = 0; tid < DF11K_THREADS; tid++)
		df11k_load_tables(&J->t, &sh, tid);
	uint32_t count[DF11K_THREADS], offset[DF11K_THREADS], bad = 0, total = 0;
	for (uint32_t tid = 0; tid < DF11K_THREADS; tid++)
		count[tid] = df11k_count(&J->t, &sh, item, tid, J->win_off_out, &bad);
	for (uint32_t tid = 0; tid < DF11K_THREADS; tid++) {
		offset[tid] = total;
		total += count[tid];
	}
	for (uint32_t tid = 0; tid < DF11K_THREADS; tid++)
		bad |= df11k_check(&J->t, item, tid, offset[tid], total);
	if (bad) {
		*err |= DF11K_ERR_INDEX;
		return;
	}
	for (uint32_t tid = DF11K_THREADS; tid-- > 0;)
		df11k_count_finish(&J->t, item, tid, offset[tid], J->win_off_out);
}

/* The upload's count launch for one huffman tensor; its error bits. */
uint32_t run_count(const df11k_tensor *t, uint32_t *win_off)
{
	df11k_batch b;
	df11k_job J;
	uint32_t err = 0;
	memset(&b, 0, sizeof b);
	assert_int_equal(df11k_count_job_init(&J, t, win_off), DF11_OK);
	assert_int_equal(df11k_batch_add(&b, &J), DF11_OK);
	for (uint32_t cta = b.n_items; cta-- > 0;)
		run_count_cta(&b, cta, &err);
	return err;
}

/* The upload's entry launch (df11k2_entry_kernel) for huffman tensor t,
 * writing run_off; its error bits. */
uint32_t run_entries(const df11k_tensor *t, uint32_t *run_off)
{
	static df11k_smem sh;
	uint32_t bad = 0;
	uint64_t n = (t->n_windows + DF11K_THREADS - 1) / DF11K_THREADS;
	for (uint64_t cta = n; cta-- > 0;) {
		memset(&sh, 0xcd, sizeof sh);
		for (uint32_t tid = 0; tid < DF11K_THREADS; tid++)
			df11k_load_tables(t, &sh, tid);
		for (uint32_t tid = DF11K_THREADS; tid-- > 0;)
			df11k2_window_entries(t, &sh, cta * DF11K_THREADS + tid,
					      run_off, &bad);
	}
	return bad ? DF11K_ERR_INDEX : 0;
}



void tensor_load(emul_tensor *T, const uint16_t *src, uint64_t n,
			const df11_encode_options *opt)
{
	memset(T, 0, sizeof *T);
	T->n = n;
	T->enc = encode_alloc(src, n, opt, &T->size);
	/* encode_alloc's buffer has the encode bound's size; keep exactly the
	 * encoded bytes so over-reads show. */
	uint8_t *exact = malloc(T->size ? T->size : 1);
	assert_non_null(exact);
	memcpy(exact, T->enc, T->size);
	free(T->enc);
	T->enc = exact;
	assert_int_equal(df11_parse(T->enc, T->size, &T->P), DF11_OK);
	T->tables = malloc(DF11K_TABLES_SIZE);
	assert_non_null(T->tables);
	T->win_off = malloc(4 * T->P.layout.n_windows + 4);
	assert_non_null(T->win_off);
	T->run_off = malloc(4 * df11k_n_runs(&T->P) + 4);
	assert_non_null(T->run_off);
	if (T->P.layout.codec == DF11_CODEC_HUFFMAN)
		df11k_build_tables(&T->P, T->tables);
	df11k_tensor_init(&T->t, &T->P, T->enc, T->tables, T->win_off,
			  T->run_off);
	if (T->P.layout.codec == DF11_CODEC_HUFFMAN) {
		assert_int_equal(run_count(&T->t, T->win_off), 0);
		assert_int_equal(run_entries(&T->t, T->run_off), 0);
	}
	T->ref = malloc(n * 2 + 2);
	assert_non_null(T->ref);
	assert_int_equal(df11_decode_reference(T->enc, T->size, T->ref, n),
			 DF11_OK);
	assert_memory_equal(T->ref, src, n * 2);
}

void tensor_free(emul_tensor *T)
{
	free(T->enc);
	free(T->tables);
	free(T->win_off);
	free(T->run_off);
	free(T->ref);
}
