/*
 * Internal: the df11_model object, shared by the reader (model.c) and the
 * writer/decoder pipelines (container.c). The container layout is in
 * df11/container_layout.h.
 */
#ifndef DF11_MODEL_INTERNAL_H
#define DF11_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "df11.h"
#include "df11/container_layout.h"
#include "df11/safetensors.h"

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

/* Appends a file record named name (copied) to m; NULL if out of memory. */
df11_mfile *df11_model_add_file(df11_model *m, const char *name);

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

/* df11_pack reads a tensor of at least df11_pack_direct_read_min bytes
 * (64 MiB) that is not in the page cache with O_DIRECT, and writes the
 * container of an input of at least df11_pack_direct_write_min bytes
 * (1 GiB) with O_DIRECT; tests lower them to reach those paths with small
 * files. */
extern uint64_t df11_pack_direct_read_min;
extern uint64_t df11_pack_direct_write_min;
/* df11_unpack hashes a payload of at most df11_unpack_hash_map_max bytes
 * (32 MiB) from the mapping as it decodes it, a larger one through pread
 * on a thread of its own; the first
 * payload of a file, if at most df11_unpack_direct_max bytes (16 MiB)
 * and not in the page cache, is read whole with O_DIRECT instead
 * (df11/dread.h). Tests set them to reach every path. */
extern uint64_t df11_unpack_hash_map_max;
extern uint64_t df11_unpack_direct_max;
/* Payloads df11_unpack has taken from direct reads, for tests to see
 * which path ran. */
extern uint64_t df11_unpack_direct_payloads;

#endif
