/* Internal: an output file written at known offsets, each byte once, in
 * any order, through O_DIRECT where the file system takes it.
 *
 * Direct writes go from the caller's memory to the disk without the page
 * cache: no copy into the cache and no new cache pages, which were the
 * largest system cost of writing gigabytes (docs/CODEC.md). O_DIRECT
 * needs every write to cover whole DF11_OUT_BLOCK blocks at block-aligned
 * file offsets, from block-aligned memory, so a write is split in three:
 *
 *   [head: part of a block][whole blocks ...][tail: part of a block]
 *
 * The whole blocks go out directly when the caller's memory is aligned
 * like the file offset (same offset modulo the block), else through an
 * aligned staging buffer, where runs that continue each other join into
 * one large write. Parts of blocks are collected in memory, with a
 * bitmap of the bytes they hold, and written as soon as a block is whole;
 * df11_out_finish writes the rest (zeros where nothing was written, as a
 * hole would read) and cuts the file back to the largest offset written.
 * If the file system refuses a direct write, the file falls back to
 * ordinary writes for good; the bytes are the same either way. */
#ifndef DF11_OUTFILE_H
#define DF11_OUTFILE_H

#include <stddef.h>
#include <stdint.h>

#include "df11.h"
#include "df11/xxh.h"

#define DF11_OUT_BLOCK 4096u
/* Staging for unaligned sources, and the read-back chunk. */
#define DF11_OUT_STAGE ((size_t)8 << 20)
/* Files at least this large are written directly. */
#define DF11_OUT_DIRECT_MIN ((uint64_t)64 << 20)

typedef struct df11_out_part {
	uint64_t block;       /* file offset / DF11_OUT_BLOCK */
	uint32_t filled;      /* bytes held */
	uint8_t *data;        /* DF11_OUT_BLOCK bytes, aligned */
	uint8_t held[DF11_OUT_BLOCK / 8];
} df11_out_part;

typedef struct df11_out {
	int fd;               /* not owned */
	const char *path;     /* for messages */
	int direct;           /* O_DIRECT in effect */
	uint64_t end;         /* largest offset written + 1 */
	uint8_t *stage;       /* DF11_OUT_STAGE bytes, aligned, or NULL */
	uint64_t stage_off;   /* file offset of stage[0], block-aligned */
	size_t stage_len;     /* bytes staged, not yet written */
	df11_out_part *part;
	size_t nparts, cap;
} df11_out;

/* Takes fd for writing; direct: try O_DIRECT (kept off if refused). */
void df11_out_open(df11_out *o, int fd, const char *path, int direct);
df11_result df11_out_pwrite(df11_out *o, const void *p, uint64_t len,
			    uint64_t off);
/* Hashes file bytes [off, off + len), all written already, into st
 * (continuing it): read back from the file (fd must be readable), with
 * the parts still held here laid over them. */
df11_result df11_out_hash(df11_out *o, uint64_t off, uint64_t len,
			  XXH3_state_t *st);
/* Writes the held parts and gives the file its size (the largest offset
 * written). The file stays open; its buffers are freed. */
df11_result df11_out_finish(df11_out *o);
/* Frees the buffers without writing (on failure). */
void df11_out_drop(df11_out *o);

#endif
