/*
 * Recomputes the XXH3 checksums of a .df11 container that cover stored
 * bytes (file header, trailer, directory, sections, payloads), walking the
 * directory as far as its fields stay inside the file. For fuzzing and
 * hostile-input tests: a hand-edited or mutated container then gets past
 * the checksums to the checks behind them. The checksums of the original
 * (decoded) tensor bytes are left as they are.
 */
#ifndef DF11_FUZZ_CONTAINER_FIX_H
#define DF11_FUZZ_CONTAINER_FIX_H

#include <stddef.h>
#include <stdint.h>

#include "codec/format.h"
#include "df11/model_internal.h"

static inline void df11_ct_fix_checksums(uint8_t *b, size_t size)
{
	if (size < DF11_CT_HEADER_SIZE)
		return;
	df11_wr64(b + DF11_CT_HDR_SUM, df11_xxh3(b, DF11_CT_SUMMED));
	if (size < DF11_CT_ALIGN + DF11_CT_TRAILER_SIZE)
		return;
	uint8_t *tr = b + size - DF11_CT_TRAILER_SIZE;
	uint64_t dir_off = df11_rd64(tr + DF11_CT_TRL_DIR_OFF),
		 dir_size = df11_rd64(tr + DF11_CT_TRL_DIR_SIZE);
	uint64_t n_files = df11_rd64(tr + DF11_CT_TRL_N_FILES),
		 n_tensors = df11_rd64(tr + DF11_CT_TRL_N_TENSORS);
	if (dir_off <= size - DF11_CT_TRAILER_SIZE &&
	    dir_size <= size - DF11_CT_TRAILER_SIZE - dir_off) {
		uint8_t *dir = b + dir_off;
		uint64_t pos = 0;
		for (uint64_t i = 0; i < n_files + n_tensors && i < 4096; i++) {
			uint8_t *p = dir + pos;
			int file = i < n_files;
			uint64_t rec = file ? DF11_CT_FILE_REC : DF11_CT_TENSOR_REC;
			if (dir_size - pos < rec)
				break;
			if (!file)
				rec = DF11_CT_TR_SHAPE + 8ull * p[DF11_CT_TR_NDIM];
			uint64_t name_len = df11_rd32(p + (file ? DF11_CT_FR_NAME_LEN
							      : DF11_CT_TR_NAME_LEN));
			uint64_t off = df11_rd64(p + (file ? DF11_CT_FR_OFF : DF11_CT_TR_OFF));
			uint64_t len = df11_rd64(p + (file ? DF11_CT_FR_SIZE : DF11_CT_TR_SIZE));
			if (off <= size && len <= size - off)
				df11_wr64(p + (file ? DF11_CT_FR_SUM : DF11_CT_TR_SUM_STORED),
					  df11_xxh3(b + off, (size_t)len));
			if (dir_size - pos < rec || dir_size - pos - rec < name_len)
				break;
			pos += rec + name_len;
		}
		df11_wr64(tr + DF11_CT_TRL_DIR_SUM, df11_xxh3(dir, (size_t)dir_size));
	}
	df11_wr64(tr + DF11_CT_TRL_SUM, df11_xxh3(tr, DF11_CT_SUMMED));
}

#endif
