/* The weight provider over df11_model_* (a checkpoint folder, a
 * .safetensors file or a .df11 container). Kept apart from weights.c so
 * that programs which only use in-memory weights do not pull in the
 * checkpoint reader. */
#include <string.h>

#include "common/error.h"
#include "llm/forward.h"

static df11_result model_desc(df11_model *m, const char *name,
			      df11_tensor_desc *d, size_t *index)
{
	df11_result r = df11_model_find(m, name, index);
	if (r)
		return r;
	if ((r = df11_model_tensor(m, *index, d)))
		return r;
	if (d->dtype != DF11_DTYPE_BF16)
		return df11_fail(DF11_UNSUPPORTED, "%s is %s, not BF16", name,
				 df11_dtype_name(d->dtype) ? df11_dtype_name(d->dtype) : "?");
	return DF11_OK;
}

static df11_result model_shape(void *ctx, const char *name, int *ndim,
			       uint64_t shape[DF11_MAX_DIMS], int *compressed)
{
	df11_tensor_desc d;
	size_t i;
	df11_result r = model_desc(ctx, name, &d, &i);
	if (r)
		return r;
	*ndim = d.ndim;
	memcpy(shape, d.shape, sizeof d.shape);
	if (compressed)
		*compressed = d.compressed;
	return DF11_OK;
}

static df11_result model_read(void *ctx, const char *name, uint64_t first,
			      uint64_t count, uint16_t *dst)
{
	df11_tensor_desc d;
	size_t i;
	df11_result r = model_desc(ctx, name, &d, &i);
	if (r)
		return r;
	if (first > d.n_elems || count > d.n_elems - first)
		return df11_fail(DF11_INVALID_ARG, "%s: elements [%llu, +%llu) "
				 "past its %llu", name, (unsigned long long)first,
				 (unsigned long long)count,
				 (unsigned long long)d.n_elems);
	/* A whole read goes through df11_model_read, which checks the
	 * container's checksum. */
	if (first == 0 && count == d.n_elems)
		return df11_model_read(ctx, i, dst, count * 2);
	return df11_model_read_range(ctx, i, first, count, dst);
}

static df11_result model_encoded(void *ctx, const char *name,
				 const void **data, size_t *size)
{
	df11_tensor_desc d;
	size_t i;
	df11_result r = model_desc(ctx, name, &d, &i);
	if (r)
		return r;
	return df11_model_encoded(ctx, i, data, size);
}

void df11_weights_from_model(df11_model *m, df11_weights *w)
{
	w->ctx = m;
	w->shape = model_shape;
	w->read = model_read;
	w->encoded = model_encoded;
}

