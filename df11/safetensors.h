/*
 * Internal: the safetensors format, read and validated.
 *
 * A .safetensors file is
 *   u64 LE N | N bytes of JSON header | data area
 * The header maps each tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]} (offsets relative to the data area), plus an optional
 * "__metadata__" object of strings. Every field is checked before use; the
 * tensors must tile the data area exactly (as the reference implementation
 * demands), which is also what lets df11-decode rebuild a file byte for
 * byte from its header bytes and its tensors.
 */
#ifndef DF11_SAFETENSORS_H
#define DF11_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "df11.h"

/* The reference implementation refuses headers above 100 MB; so do we. */
#define DF11_ST_MAX_HEADER 100000000u

typedef struct df11_st_tensor {
	char *name;
	df11_dtype dtype;
	int ndim;
	uint64_t shape[DF11_MAX_DIMS];
	uint64_t n_elems;
	uint64_t begin, end; /* data_offsets: relative to the data area */
} df11_st_tensor;

typedef struct df11_st_header {
	uint64_t header_len; /* N, the JSON bytes */
	uint64_t data_off;   /* 8 + N: where the data area starts */
	uint64_t data_size;  /* file size - data_off */
	size_t n;
	df11_st_tensor *t;   /* sorted by begin: the order of the bytes */
} df11_st_header;

/* Parses and validates a safetensors header. buf holds at least the first
 * min(avail, file_size) bytes of the file; file_size is the whole file's
 * length (offsets are checked against it). label names the file in error
 * messages. On failure *h is left empty. */
df11_result df11_st_parse(const uint8_t *buf, uint64_t avail,
			  uint64_t file_size, const char *label,
			  df11_st_header *h);
void df11_st_header_free(df11_st_header *h);

/* dtype from its safetensors spelling; -1 if unknown. */
int df11_dtype_from_name(const char *s);

/* A read-only mapping of a whole file (size 0 gives p == NULL). */
typedef struct df11_map {
	uint8_t *p;
	uint64_t size;
} df11_map;

df11_result df11_map_file(const char *path, df11_map *m);
void df11_unmap(df11_map *m);
/* madvise over mapped bytes [p, p + len), widened to whole pages; a
 * hint, so failures are ignored. */
void df11_advise(const void *p, uint64_t len, int advice);
/* Whether less than half of mapped bytes [p, p + len) are in the page
 * cache, judged from 16 pages spread across them (0 if that cannot be
 * told). */
int df11_mostly_uncached(const uint8_t *p, uint64_t len);

/* Anonymous memory in whole huge pages (len a multiple of DF11_HUGE_PAGE
 * is best): first touch of a 1 GB buffer then costs 500 page faults
 * instead of 250,000. NULL if out of memory; free with munmap. */
#define DF11_HUGE_PAGE ((size_t)2 << 20)
uint8_t *df11_huge_map(size_t len);

#endif
