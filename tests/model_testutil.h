/* Helpers for the checkpoint tests: temporary folders and hand-built
 * safetensors files. */
#ifndef DF11_MODEL_TESTUTIL_H
#define DF11_MODEL_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* A fresh temporary folder (removed with rm_tree). */
char *make_tmpdir(void);
void rm_tree(const char *path);
char *path_join(const char *a, const char *b); /* malloc'd */

void write_bytes(const char *path, const void *p, size_t n);
/* The whole file; *n_ret gets its size. */
uint8_t *read_bytes(const char *path, size_t *n_ret);

/* Drops a file's pages from the page cache (written back first), as a
 * file that has not been read since the machine started. */
void evict_file(const char *path);
/* Whether the file system under path takes O_DIRECT reads (tmpfs does
 * not): where it does not, the direct paths fall back and a test can
 * only say so. */
int direct_reads_work(const char *path);

/* Writes u64 LE len(json) | json | data. */
void write_st(const char *path, const char *json, const void *data,
	      size_t data_size);

/* A small checkpoint: nt BF16 matrices of rows x cols ("w.K") plus a few
 * tensors of other dtypes, a scalar and a zero-size tensor, with
 * __metadata__. Deterministic for seed. */
void write_st_mixed(const char *path, int nt, uint64_t rows, uint64_t cols,
		    uint64_t seed);

#endif
