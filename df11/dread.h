/* Internal: the payloads of a container that is not in the page cache,
 * read with O_DIRECT one ahead of the decoder and checked against their
 * hashes on the way.
 *
 * Faulting a cold payload in through the mapping fills the page cache
 * page by page: on the build VM that cost more CPU time than decoding a
 * 16 MiB tensor, and more wall time than the disk's own read. A direct
 * read goes from the disk into a buffer that is reused from payload to
 * payload. Payloads already (mostly) in the page cache are left to the
 * mapping, which reads them for free; so are those of a file system that
 * refuses direct reads. */
#ifndef DF11_DREAD_H
#define DF11_DREAD_H

#include <stddef.h>
#include <stdint.h>

#include "df11.h"

/* A payload: bytes [off, off + len) of the file (len > 0), whose XXH3-64
 * is sum. */
typedef struct df11_dread_item {
	uint64_t off, len, sum;
} df11_dread_item;

typedef struct df11_dread df11_dread;

/* Starts reading items[0..n) of the file at path in their order, on a
 * thread of its own, into one buffer that the largest sizes: item k + 1
 * once the caller has released item k. map is the file's mapping (the
 * page-cache check). items must stay valid until df11_dread_free. */
df11_result df11_dread_start(const char *path, const uint8_t *map,
			     const df11_dread_item *items, size_t n,
			     df11_dread **R_ret);

/* Item k, in order (each k once): *p_ret is its bytes, read and matching
 * its hash, valid until df11_dread_release(R, k); or NULL, to be taken
 * from the mapping. DF11_CHECKSUM when the bytes differ from the hash,
 * DF11_IO on a failed read. */
df11_result df11_dread_get(df11_dread *R, size_t k, const uint8_t **p_ret);

/* The caller is done with item k's bytes. */
void df11_dread_release(df11_dread *R, size_t k);

/* Stops the thread and frees everything (R may be NULL). */
void df11_dread_free(df11_dread *R);

#endif
