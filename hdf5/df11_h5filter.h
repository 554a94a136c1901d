/*
 * The df11 HDF5 filter: its id and its chunk payload layout.
 *
 * The filter compresses a chunk of a 16-bit dataset (BF16 weights stored as
 * H5T_STD_U16LE, see docs/HDF5.md) with the df11 tensor codec and decodes it
 * bit for bit on read. It is a dynamically loaded HDF5 plugin,
 * libdf11_h5filter.so, found through HDF5_PLUGIN_PATH.
 *
 * Writers only need the id:
 *
 *   H5Pset_filter(dcpl, DF11_H5_FILTER_ID, H5Z_FLAG_MANDATORY, 0, NULL);
 *
 * Chunk payload (what the filter stores for one chunk), little-endian:
 *
 *   0   u8[4]  magic "DF1H"
 *   4   u8     payload version (1)
 *   5   u8[3]  reserved, zero
 *   8   u64    XXH3-64 of the chunk's original bytes
 *   16  ...    one encoded df11 tensor (docs/FORMAT.md) of the chunk's
 *              nbytes / 2 little-endian 16-bit words; it runs to the end
 *
 * The codec only checks the stream's structure; the checksum is what lets
 * the filter refuse a corrupt chunk instead of returning wrong words.
 *
 * Client data (cd_values), filled in at dataset creation: [0] the element
 * size (2), [1] the bytes of a whole chunk; decoding refuses a payload of
 * another size.
 */
#ifndef DF11_H5FILTER_H
#define DF11_H5FILTER_H

#include <stddef.h>

#include "df11.h"

/* HDF5 sets ids 256..511 aside for testing filters that are not registered
 * with The HDF Group; 0x1DF ("DF1") is taken from that range. Registering
 * a permanent id (>= 512) is a later step; files written with this id need
 * this plugin to be read. */
#define DF11_H5_FILTER_ID 479
#define DF11_H5_FILTER_NAME "df11: lossless BF16 (Huffman-coded exponents)"

#define DF11_H5_MAGIC "DF1H"
#define DF11_H5_VERSION 1
#define DF11_H5_HEADER_SIZE 16u

/* HDF5 chunks are below 4 GiB; a payload claiming more is corrupt. */
#define DF11_H5_MAX_CHUNK_BYTES ((unsigned long long)0xffffffffu)

/* Builds the payload the filter would store for a chunk of nbytes bytes
 * (even, > 0), so that a writer can encode chunks on its own threads and
 * store them with H5Dwrite_chunk (df11-export does). Thread-safe. */
size_t df11_h5_payload_bound(size_t nbytes);
df11_result df11_h5_payload_encode(const void *src, size_t nbytes, void *dst,
				   size_t dst_capacity, size_t *size_ret);

#endif
