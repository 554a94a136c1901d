/*
 * Fuzz target: the safetensors header parser. Any input must either be
 * refused or give tensors that keep the promises the rest of df11 relies
 * on: sorted, inside the data area, tiling it exactly, sizes equal to
 * shape x dtype size.
 */
#include "fuzz/fuzz.h"

#include "df11.h"
#include "df11/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	df11_st_header h;
	if (df11_st_parse(data, size, size, "fuzz", &h) != DF11_OK)
		return 0;
	FUZZ_CHECK(h.data_off == 8 + h.header_len && h.data_off <= size,
		   "header %llu of %zu", (unsigned long long)h.header_len, size);
	uint64_t at = 0;
	for (size_t i = 0; i < h.n; i++) {
		const df11_st_tensor *t = &h.t[i];
		FUZZ_CHECK(t->begin == at, "tensor %zu starts at %llu, not %llu",
			   i, (unsigned long long)t->begin,
			   (unsigned long long)at);
		FUZZ_CHECK(t->end >= t->begin && t->end <= h.data_size,
			   "tensor %zu out of range", i);
		FUZZ_CHECK(t->end - t->begin ==
			   t->n_elems * df11_dtype_size(t->dtype),
			   "tensor %zu size", i);
		FUZZ_CHECK(t->ndim >= 0 && t->ndim <= DF11_MAX_DIMS, "ndim");
		at = t->end;
	}
	FUZZ_CHECK(at == h.data_size, "tensors end at %llu of %llu",
		   (unsigned long long)at, (unsigned long long)h.data_size);
	df11_st_header_free(&h);
	return 0;
}
