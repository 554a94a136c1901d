/*
 * df11_model_tensor_header: the safetensors header bytes of the file that
 * holds a tensor, so that bindings can read its "__metadata__" object.
 */
#include "df11.h"
#include "common/error.h"
#include "df11/model_internal.h"

df11_result df11_model_tensor_header(const df11_model *m, size_t i,
				     const void **data_ret, size_t *size_ret)
{
	if (!m || !data_ret || !size_ret)
		return df11_fail(DF11_INVALID_ARG, "model_tensor_header: NULL "
				 "argument");
	if (i >= m->nview)
		return df11_fail(DF11_INVALID_ARG, "model_tensor_header: index "
				 "%zu of %zu", i, m->nview);
	const df11_mfile *f = &m->f[m->t[m->view[i]].file];
	if (!f->is_st || !f->sect)
		return df11_fail(DF11_BAD_DATA, "%s: tensor %zu has no "
				 "safetensors header", m->path, i);
	if (m->kind == DF11_KIND_CONTAINER &&
	    df11_xxh3(f->sect, (size_t)f->sect_size) != f->sect_sum)
		return df11_fail(DF11_CHECKSUM, "%s: %s: header bytes", m->path,
				 f->name);
	*data_ret = f->sect;
	*size_ret = (size_t)f->sect_size;
	return DF11_OK;
}
