/*
 * Internal: official DFloat11 groups (dfloat11_decode.c), their names and
 * shapes from config.json (dfloat11_arch.c), and the folder reader
 * (dfloat11_read.c). The layout is in dfloat11_format.h.
 */
#ifndef DF11_DFLOAT11_H
#define DF11_DFLOAT11_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "df11.h"

/* One compressed group: pointers into the mapped safetensors files. */
typedef struct df11_dfl_group {
	char *name;              /* module path, "model.layers.0" */
	const uint8_t *luts;     /* [n_luts][256] */
	unsigned n_luts;
	const uint8_t *stream;   /* encoded_exponent */
	uint64_t n_bytes;
	const uint8_t *sm;       /* sign_mantissa, one per element */
	uint64_t n;              /* elements */
	const uint8_t *op;       /* output_positions, u32 LE */
	uint64_t n_op;
	const uint8_t *gaps;
	uint64_t gaps_size;
	const uint8_t *split;    /* split_positions, i64 LE */
	uint64_t n_split;
	uint64_t blocks;         /* ceil(n_bytes / 4096) */
	uint64_t *fast;          /* 2^12-entry decode table, built on first use */
} df11_dfl_group;

/* The group coder of df11_export_dfloat11 on n BF16 words in memory,
 * without files (benchmarks time it): the code the writer would choose,
 * stream bytes to stream (room for 4 n + 8 bytes), sign|mantissa bytes to
 * sm (n); *n_bytes_ret: the stream's length. DF11_UNSUPPORTED for words
 * the writer would store plain. */
df11_result df11_dfl_encode_group(const uint16_t *w, uint64_t n,
				  uint8_t *stream, uint8_t *sm,
				  uint64_t *n_bytes_ret);

/* Checks every size, the tables, output_positions and split_positions of
 * a group (not the stream: blocks are checked as they are decoded).
 * label names the folder in messages. */
df11_result df11_dfl_group_check(const df11_dfl_group *g, const char *label);

/* Decodes elements [first, first + count) of the group into dst, starting
 * at the block that holds element first, on up to threads threads. Every
 * decoded block is checked against gaps and output_positions; the last
 * block also against n_bytes. */
df11_result df11_dfl_group_decode(df11_dfl_group *g, uint64_t first,
				  uint64_t count, uint16_t *dst, int threads,
				  const char *label);

/* Front to back, one kernel lookup per symbol, ignoring gaps and
 * output_positions: the oracle. Checks that the stream holds exactly n
 * codes (n_bytes = ceil(bits / 8)). */
df11_result df11_dfl_decode_reference(const df11_dfl_group *g, uint16_t *dst,
				      const char *label);

void df11_dfl_group_release(df11_dfl_group *g);

/* The BF16 view of an official folder is cut into shards of at most this
 * many bytes of tensor data (a larger tensor alone in its shard): 5 GB,
 * save_pretrained's default max_shard_size. Tests lower it. */
extern uint64_t df11_dfl_shard_bytes;

/* The shapes of an architecture, from config.json. */
typedef struct df11_dfl_arch {
	char model_type[32];
	uint64_t hidden, inter, vocab, heads, kv_heads, head_dim;
} df11_dfl_arch;

/* DF11_UNSUPPORTED naming the model_type where shapes cannot be known. */
df11_result df11_dfl_arch_from_config(const json_t *config, df11_dfl_arch *a,
				      const char *label);

/* The 2-D shape of weight `name`; DF11_UNSUPPORTED if the architecture
 * does not name it. */
df11_result df11_dfl_arch_shape(const df11_dfl_arch *a, const char *name,
				uint64_t shape[2], const char *label);

/* config.json text without its top-level "dfloat11_config" member, the
 * rest byte for byte; malloc'd into *out. DF11_NOT_FOUND if absent. */
df11_result df11_dfl_strip_config(const char *text, size_t size, char **out,
				  size_t *out_size);

/* Whether Python regex pattern (as written in pattern_dict) fully
 * matches s: translated to POSIX ERE (\d, \w, \s, \. ...).
 * 1 = match, 0 = no match, -1 = a construct that cannot be translated. */
int df11_dfl_fullmatch(const char *pattern, const char *s);

#endif
