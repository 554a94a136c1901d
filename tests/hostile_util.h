/* Helpers for the hostile-input tests: guard pages and .df11 containers
 * built field by field, so a test can set any directory value. */
#ifndef DF11_HOSTILE_UTIL_H
#define DF11_HOSTILE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "df11.h"

/* n bytes copied to the end of a page followed by a PROT_NONE page: a read
 * past them faults, with or without AddressSanitizer. */
typedef struct guarded {
	uint8_t *map;
	size_t map_size;
	uint8_t *p;
} guarded;

guarded guard(const void *src, size_t n);
void unguard(guarded *g);

/* One tensor of a hand-built container. Data is the original bytes;
 * payload what is stored (the df11 encoding for codec 1, else the data). */
typedef struct ct_tensor {
	const char *name;
	df11_dtype dtype;
	int ndim;
	uint64_t shape[DF11_MAX_DIMS];
	int codec;                  /* 0 stored, 1 df11 */
	const void *data;           /* nbytes original bytes (NULL: no sum) */
	uint64_t nbytes;
	const void *payload;
	uint64_t payload_size;
	/* Overrides, 0 = computed: record nbytes, payload offset, size. */
	uint64_t rec_nbytes, rec_off, rec_len;
} ct_tensor;

/* A one-file container (source kind 0) holding `json` as its safetensors
 * header and the tensors in order; orig_size 0 means 8 + len(json) + the
 * sum of nbytes. All checksums are right. Returns malloc'd bytes. */
uint8_t *ct_build(const char *json, uint64_t orig_size, const ct_tensor *t,
		  size_t nt, size_t *size_ret);

#endif
