/*
 * Fuzz target: the safetensors header parser (df11_st_parse).
 *
 * Input: the first bytes of a .safetensors file. It is parsed twice: as a
 * whole file, and as the head of a longer file (the caller mapped only the
 * header; the data area is then larger than what is in the buffer). An
 * accepted header must describe tensors that tile the data area exactly,
 * whose sizes match their dtype and shape without overflow, with unique
 * names, so that no later read can leave the file or alias another tensor.
 */
#include "df11.h"
#include "df11/safetensors.h"
#include "fuzz/fuzz.h"

static void check_header(const df11_st_header *h, uint64_t file_size)
{
	FUZZ_CHECK(h->data_off == 8 + h->header_len &&
		   h->data_off <= file_size &&
		   h->data_size == file_size - h->data_off,
		   "header %llu bytes, data area %llu in a %llu-byte file",
		   (unsigned long long)h->header_len,
		   (unsigned long long)h->data_size,
		   (unsigned long long)file_size);
	uint64_t at = 0;
	for (size_t i = 0; i < h->n; i++) {
		const df11_st_tensor *t = &h->t[i];
		FUZZ_CHECK(t->name != NULL, "tensor %zu has no name", i);
		FUZZ_CHECK((int)t->dtype >= 0 && t->dtype < DF11_DTYPE_COUNT,
			   "dtype %d", (int)t->dtype);
		FUZZ_CHECK(t->ndim >= 0 && t->ndim <= DF11_MAX_DIMS, "ndim %d",
			   t->ndim);
		/* The element count is the shape's product; an overflow
		 * anywhere must have been refused. */
		uint64_t n = 1;
		int over = 0, zero = 0;
		for (int k = 0; k < t->ndim; k++) {
			zero |= t->shape[k] == 0;
			over |= __builtin_mul_overflow(n, t->shape[k], &n);
		}
		FUZZ_CHECK(!(over && !zero) && n == t->n_elems, "%s: shape "
			   "product differs from n_elems %llu", t->name,
			   (unsigned long long)t->n_elems);
		FUZZ_CHECK(t->begin == at && t->end >= t->begin &&
			   t->end <= h->data_size,
			   "%s: [%llu, %llu) does not follow %llu within %llu",
			   t->name, (unsigned long long)t->begin,
			   (unsigned long long)t->end, (unsigned long long)at,
			   (unsigned long long)h->data_size);
		uint64_t bytes;
		FUZZ_CHECK(!__builtin_mul_overflow(t->n_elems,
						   (uint64_t)df11_dtype_size(t->dtype),
						   &bytes) &&
			   bytes == t->end - t->begin,
			   "%s: %llu bytes for %llu elements",
			   t->name, (unsigned long long)(t->end - t->begin),
			   (unsigned long long)t->n_elems);
		at = t->end;
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(h->t[j].name, t->name) != 0,
				   "tensor %s listed twice", t->name);
	}
	FUZZ_CHECK(at == h->data_size, "data bytes [%llu, %llu) belong to no "
		   "tensor", (unsigned long long)at,
		   (unsigned long long)h->data_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	df11_st_header h;
	df11_result r = df11_st_parse(data, size, size, "fuzz", &h);
	FUZZ_CHECK(r == DF11_OK || r == DF11_BAD_DATA || r == DF11_LIMIT ||
		   r == DF11_UNSUPPORTED, "result %d", (int)r);
	if (r == DF11_OK) {
		check_header(&h, size);
		df11_st_header_free(&h);
	}
	/* The same bytes as the head of a file with more data after them. */
	uint64_t file_size = size + 1 + fuzz_hash(data, size) % 4096;
	r = df11_st_parse(data, size, file_size, "fuzz", &h);
	if (r == DF11_OK) {
		check_header(&h, file_size);
		df11_st_header_free(&h);
	}
	return 0;
}
