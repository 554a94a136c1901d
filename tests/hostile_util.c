#include "tests/hostile_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec/format.h"
#include "df11/model_internal.h"
#include "fuzz/container_fix.h"

guarded guard(const void *src, size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_pages = (n + page - 1) / page;
	guarded g;
	g.map_size = (data_pages + 1) * page;
	g.map = mmap(NULL, g.map_size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g.map != MAP_FAILED);
	assert_int_equal(mprotect(g.map + data_pages * page, page, PROT_NONE), 0);
	g.p = g.map + data_pages * page - n;
	if (n)
		memcpy(g.p, src, n);
	return g;
}

void unguard(guarded *g)
{
	munmap(g->map, g->map_size);
}

static uint64_t up256(uint64_t x)
{
	return (x + 255) & ~(uint64_t)255;
}

uint8_t *ct_build(const char *json, uint64_t orig_size, const ct_tensor *t,
		  size_t nt, size_t *size_ret)
{
	const char *file_name = "model.safetensors";
	size_t jn = strlen(json), fnl = strlen(file_name);
	uint64_t sect = 8 + jn, data_total = 0, pos = 256;
	uint64_t off_sect = pos;
	pos = up256(pos + sect);
	uint64_t *poff = calloc(nt + 1, sizeof *poff);
	assert_non_null(poff);
	for (size_t i = 0; i < nt; i++) {
		poff[i] = pos;
		pos = up256(pos + t[i].payload_size);
		data_total += t[i].nbytes;
	}
	uint64_t dir_off = pos, dir_size = 48 + fnl;
	for (size_t i = 0; i < nt; i++)
		dir_size += 64 + 8 * (uint64_t)t[i].ndim + strlen(t[i].name);
	size_t size = (size_t)(dir_off + dir_size + 64);
	uint8_t *b = calloc(1, size);
	assert_non_null(b);
	memcpy(b, DF11_CT_MAGIC, 8);
	df11_wr16(b + 8, DF11_CT_VERSION_MAJOR);
	df11_wr16(b + 10, DF11_CT_VERSION_MINOR);
	df11_wr64(b + off_sect, jn);
	memcpy(b + off_sect + 8, json, jn);
	for (size_t i = 0; i < nt; i++)
		if (t[i].payload_size)
			memcpy(b + poff[i], t[i].payload, t[i].payload_size);
	/* File record. */
	uint8_t *p = b + dir_off;
	p[0] = 0;
	df11_wr32(p + 4, (uint32_t)fnl);
	df11_wr64(p + 8, orig_size ? orig_size : sect + data_total);
	df11_wr64(p + 16, off_sect);
	df11_wr64(p + 24, sect);
	df11_wr32(p + 40, 0);
	df11_wr32(p + 44, (uint32_t)nt);
	memcpy(p + 48, file_name, fnl);
	p += 48 + fnl;
	/* Tensor records, in data order. */
	uint64_t begin = 0;
	for (size_t i = 0; i < nt; i++) {
		df11_wr32(p, 0);
		p[4] = (uint8_t)t[i].dtype;
		p[5] = (uint8_t)t[i].codec;
		p[6] = (uint8_t)t[i].ndim;
		size_t nl = strlen(t[i].name);
		df11_wr32(p + 8, (uint32_t)nl);
		df11_wr64(p + 16, begin);
		df11_wr64(p + 24, t[i].rec_nbytes ? t[i].rec_nbytes : t[i].nbytes);
		df11_wr64(p + 32, t[i].rec_off ? t[i].rec_off : poff[i]);
		df11_wr64(p + 40, t[i].rec_len ? t[i].rec_len : t[i].payload_size);
		df11_wr64(p + 48, t[i].data ? df11_xxh3(t[i].data,
						     (size_t)t[i].nbytes) : 0);
		for (int k = 0; k < t[i].ndim; k++)
			df11_wr64(p + 64 + 8 * k, t[i].shape[k]);
		memcpy(p + 64 + 8 * t[i].ndim, t[i].name, nl);
		p += 64 + 8 * (uint64_t)t[i].ndim + nl;
		begin += t[i].nbytes;
	}
	uint8_t *tr = b + size - 64;
	memcpy(tr, DF11_CT_TRAILER_MAGIC, 8);
	df11_wr64(tr + 8, dir_off);
	df11_wr64(tr + 16, dir_size);
	df11_wr64(tr + 32, 1);
	df11_wr64(tr + 40, nt);
	df11_ct_fix_checksums(b, size);
	free(poff);
	*size_ret = size;
	return b;
}
