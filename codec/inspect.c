/* df11_inspect: the public description of an encoded tensor, from the
 * parser's validated view. (Apart from parse.c, which libdf11_cuda also
 * compiles in, so that only libdf11 exports it.) */
#include <string.h>

#include "df11.h"
#include "codec/parse.h"
#include "common/error.h"

df11_result df11_inspect(const void *src, size_t size, df11_tensor_info *I)
{
	df11_parsed P;
	if (!I)
		return df11_fail(DF11_INVALID_ARG, "inspect: NULL info");
	memset(I, 0, sizeof *I);
	df11_result r = df11_parse(src, size, &P);
	if (r != DF11_OK)
		return r;
	const df11_layout *L = &P.layout;
	I->n_elems = L->n_elems;
	I->codec = (int)L->codec;
	I->max_code_len = (int)L->max_code_len;
	I->window_log2 = (int)L->window_log2;
	I->block_log2 = (int)L->block_log2;
	I->stream_bits = L->stream_bits;
	I->n_windows = L->n_windows;
	I->n_blocks = L->n_blocks;
	I->encoded_size = (size_t)L->total_size;
	I->table_bytes = L->table_size;
	I->index_bytes = (size_t)(8 * L->n_blocks + (L->n_windows + 1) / 2);
	memcpy(I->code_len, P.code_len, 256);
	if (L->codec == DF11_CODEC_HUFFMAN) {
		for (int s = 0; s < 256; s++)
			I->distinct_exponents += P.code_len[s] != 0;
	} else if (L->codec == DF11_CODEC_SINGLE) {
		I->distinct_exponents = 1;
	}
	return DF11_OK;
}

