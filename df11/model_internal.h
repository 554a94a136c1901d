/*
 * Internal: the df11_model object and the .df11 container layout, shared by
 * the reader (model.c) and the writer/decoder pipelines (container.c).
 *
 * Container (.df11 file), all integers little-endian; docs/FORMAT.md has the
 * prose version:
 *
 *   0       file header, 64 bytes
 *             0  u8[8] magic "DF11CKPT"
 *             8  u16   version major (1), u16 version minor (0)
 *             12 u32   source kind: 0 = one .safetensors file, 1 = a folder
 *             16 u8[40] zero
 *             56 u64   XXH3-64 of bytes 0..56
 *   256...  sections, each starting at a multiple of 256 (zero padding):
 *           tensor payloads, safetensors header bytes, carried files
 *   D       directory (file records, then tensor records), dir_size bytes
 *   end-64  trailer, 64 bytes
 *             0  u8[8] magic "DF11DIR\0"
 *             8  u64   D (directory offset)     16 u64 dir_size
 *             24 u64   XXH3-64 of the directory 32 u64 n_files
 *             40 u64   n_tensors                48 u64 zero
 *             56 u64   XXH3-64 of bytes 0..56
 *
 * File record (48 bytes + name):
 *   0 u8 type (0 = safetensors, 1 = plain file)  1 u8[3] zero
 *   4 u32 name_len  8 u64 original file size
 *   16 u64 section offset  24 u64 section size
 *      (safetensors: the first 8 + N bytes of the file; plain: all of it)
 *   32 u64 XXH3-64 of the section
 *   40 u32 first tensor record  44 u32 tensor count  (safetensors only)
 *   48 name (relative path, UTF-8, no NUL)
 * Tensor record (64 bytes + 8 * ndim + name):
 *   0 u32 file index  4 u8 dtype  5 u8 codec (0 = stored, 1 = df11)
 *   6 u8 ndim  7 u8 zero  8 u32 name_len  12 u32 zero
 *   16 u64 begin (in the original data area)  24 u64 nbytes (original)
 *   32 u64 payload offset  40 u64 payload size
 *   48 u64 XXH3-64 of the original bytes  56 u64 XXH3-64 of the payload
 *   64 u64 shape[ndim]  then name
 */
#ifndef DF11_MODEL_INTERNAL_H
#define DF11_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "df11.h"
#include "df11/safetensors.h"

#define DF11_CT_MAGIC "DF11CKPT"
#define DF11_CT_TRAILER_MAGIC "DF11DIR"  /* 8 bytes with its NUL */
#define DF11_CT_VERSION_MAJOR 1
#define DF11_CT_VERSION_MINOR 0
#define DF11_CT_HEADER_SIZE 64u
#define DF11_CT_TRAILER_SIZE 64u
#define DF11_CT_ALIGN 256u
#define DF11_CT_FILE_REC 48u
#define DF11_CT_TENSOR_REC 64u
#define DF11_CT_MAX_NAME 4096u
#define DF11_CT_MAX_FILES 100000u
#define DF11_CT_MAX_TENSORS 10000000u

enum { DF11_SRC_FILE = 0, DF11_SRC_FOLDER = 1 };
enum { DF11_KIND_SAFETENSORS, DF11_KIND_FOLDER, DF11_KIND_CONTAINER,
       DF11_KIND_DFLOAT11 };

typedef struct df11_mfile {
	char *name;           /* path relative to the checkpoint folder */
	int is_st;            /* a .safetensors file */
	int exposed;          /* its tensors are in the model's view */
	df11_map map;         /* safetensors/folder kinds: the file itself */
	uint64_t orig_size;   /* the original file's size */
	const uint8_t *sect;  /* st: header bytes (8 + N); plain: contents */
	uint64_t sect_size;
	uint64_t sect_sum;    /* container: XXH3 of sect */
	size_t first, count;  /* st: its tensors, m->t[first .. first+count) */
} df11_mfile;

typedef struct df11_mtensor {
	df11_tensor_desc d;
	char *name;
	size_t file;
	uint64_t begin;        /* offset in the original file's data area */
	const uint8_t *stored; /* mapped stored bytes (d.stored_bytes) */
	uint64_t sum_orig, sum_stored;
	int has_sum;
	size_t dfl;            /* DFloat11 folder: 1 + its piece; else 0 */
} df11_mtensor;

struct df11_model {
	int kind;             /* DF11_KIND_* */
	int src_kind;         /* DF11_SRC_*: what a container was made from */
	char *path;
	df11_map cmap;        /* container kind: the .df11 file */
	df11_mfile *f;
	size_t nf;
	df11_mtensor *t;      /* every tensor of every safetensors file */
	size_t nt;
	size_t *view;         /* public index -> t[] */
	size_t nview;
	size_t *by_name;      /* view positions sorted by name */
	df11_decoder *dec;
	int threads;
	struct df11_dfl_model *dfl; /* DFloat11 folder (dfloat11_read.c) */
};

uint64_t df11_xxh3(const void *p, size_t n);

/* "a/b", malloc'd; NULL if out of memory. */
char *df11_join_path(const char *a, const char *b);

/* Checks a relative path from a container or index: no absolute path,
 * no "." or ".." component, no empty component, no control bytes. */
int df11_safe_relpath(const char *s);

/* DF11_BAD_DATA if an encoded tensor's payload declares another element
 * count than its record (and so its shape). */
df11_result df11_mtensor_payload_check(const df11_model *m,
				       const df11_mtensor *t);

/* Reads tensor t (internal index) into dst; check: verify checksums. */
df11_result df11_mtensor_read(df11_model *m, size_t ti, void *dst,
			      uint64_t size, int check);

/* Official DFloat11 folders (dfloat11_read.c). */
typedef struct df11_dfl_model df11_dfl_model;
/* Whether path is a folder whose config.json has "dfloat11_config". */
int df11_dfl_detect(const char *path);
/* Fills m (m->path is the folder) with the BF16 checkpoint it holds. */
df11_result df11_dfl_open(df11_model *m);
void df11_dfl_free(df11_dfl_model *d);
/* Elements [first, first + count) of a decoded weight (t->dfl != 0). */
df11_result df11_dfl_read(df11_model *m, const df11_mtensor *t, uint64_t first,
			  uint64_t count, uint16_t *dst);
/* Its compressed groups (for tests and tools). */
size_t df11_dfl_group_count(const df11_model *m);
struct df11_dfl_group *df11_dfl_group_get(df11_model *m, size_t i);
/* Writes the BF16 checkpoint to the folder output (df11_unpack). */
df11_result df11_dfl_unpack(df11_model *m, const char *output,
			    const df11_pack_options *opt,
			    df11_pack_stats *stats_ret);

#endif
