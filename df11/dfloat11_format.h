/*
 * The official DFloat11 layout (the `dfloat11` Python package, 0.5.x),
 * defined once for the reader, the writer and the tests' model of the
 * official CUDA kernel. docs/DFLOAT11.md is the prose version.
 *
 * A checkpoint is a folder: config.json with a "dfloat11_config" object,
 * and *.safetensors files. Each compressed group (one module: a decoder
 * layer's projections, the embedding, lm_head) is six tensors
 * "<module>.<suffix>":
 *
 *   luts              U8  [n_luts, 256]  decode tables, last row = lengths
 *   encoded_exponent  U8  [n_bytes]      Huffman codes of the exponents
 *   sign_mantissa     U8  [n]            (sign << 7) | mantissa7
 *   output_positions  U8  [4 * P]        u32 LE per 4096-byte block,
 *                                        P = blocks + 1 (or blocks)
 *   gaps              U8  [320 * blocks] 5 bits per 8-byte chunk
 *   split_positions   I64 [k - 1]        element offsets of weights 2..k
 *
 * Stream: codes MSB-first, bytes filled MSB-first; the last byte is padded
 * with the first bits of the EOF code. blocks = ceil(n_bytes / 4096).
 *
 * A chunk is 8 stream bytes (64 bits, one CUDA thread): gap[t] is the bit
 * offset, inside chunk t, of the first code that starts there (EOF's start
 * counts). A block is 512 chunks (4096 bytes): output_positions[b] is the
 * index of the first element whose code starts in block b, the last entry
 * is n.
 *
 * Decoding one symbol from the 32 stream bits w at the current position
 * (dfl_lookup below), as the kernel does:
 *
 *   v = luts[0][w >> 24]
 *   while v >= 240 (at most three times): v = luts[256 - v][next 8 bits]
 *   length = luts[n_luts - 1][v]
 *
 * so exponents 240..255 cannot be stored, at most 16 tables can be pointed
 * to (n_luts <= 18), and codes are at most 32 bits long.
 */
#ifndef DF11_DFLOAT11_FORMAT_H
#define DF11_DFLOAT11_FORMAT_H

#include <stdint.h>

#define DFL_VERSION "0.5.0"
#define DFL_THREADS_PER_BLOCK 512u
#define DFL_BYTES_PER_THREAD 8u
#define DFL_CHUNK_BITS 64u                          /* one thread */
#define DFL_BLOCK_BYTES 4096u                       /* 512 threads x 8 */
#define DFL_BLOCK_BITS (8u * DFL_BLOCK_BYTES)
#define DFL_GAP_BYTES_PER_BLOCK 320u                /* 512 x 5 bits */
#define DFL_PTR_MIN 240u     /* LUT entries >= this point to a table */
#define DFL_MAX_SUBTABLES 16u
#define DFL_MAX_LUTS (2u + DFL_MAX_SUBTABLES)
#define DFL_MAX_LEVELS 4u    /* root + three pointer hops */
#define DFL_MAX_CODE_LEN 32u
/* The kernel's dynamic shared memory is 512*4 + 4 + 2 * elements of the
 * largest block; the loader does not raise CUDA's 48 KiB default. */
#define DFL_SHARED_MEM_LIMIT 49152u
#define DFL_MAX_BLOCK_ELEMS \
	((DFL_SHARED_MEM_LIMIT - 4u * DFL_THREADS_PER_BLOCK - 4u) / 2u)

_Static_assert(DFL_CHUNK_BITS == 8u * DFL_BYTES_PER_THREAD, "chunk");
_Static_assert(DFL_GAP_BYTES_PER_BLOCK * 8u == 5u * DFL_THREADS_PER_BLOCK,
	       "gap bytes");
_Static_assert(DFL_MAX_BLOCK_ELEMS == 23550u, "shared memory bound");

enum {
	DFL_LUTS, DFL_STREAM, DFL_SM, DFL_OUTPUT_POS, DFL_GAPS, DFL_SPLIT,
	DFL_N_BUFFERS
};

/* The buffer suffixes, in the enum's order. */
static const char *const dfl_suffix[DFL_N_BUFFERS] = {
	"luts", "encoded_exponent", "sign_mantissa", "output_positions",
	"gaps", "split_positions",
};

/* gap of chunk t: 5 bits, MSB-first, from a buffer of size bytes. */
static inline unsigned dfl_gap(const uint8_t *gaps, uint64_t size, uint64_t t)
{
	uint64_t bit = 5 * t, i = bit / 8;
	unsigned s = (unsigned)gaps[i] << 8 | (i + 1 < size ? gaps[i + 1] : 0);
	return (s >> (11 - bit % 8)) & 31u;
}

/* One kernel lookup from the 32 bits w (MSB = the current bit). Returns
 * the symbol and sets *len (0: an entry the kernel cannot leave). The
 * tables must have been checked: every pointer names a row < n_luts - 1. */
static inline unsigned dfl_lookup(const uint8_t *luts, unsigned n_luts,
				  uint32_t w, unsigned *len)
{
	unsigned v = luts[w >> 24];
	for (int k = 1; k < (int)DFL_MAX_LEVELS && v >= DFL_PTR_MIN; k++)
		v = luts[256u * (256u - v) + ((w >> (24 - 8 * k)) & 255u)];
	*len = v >= DFL_PTR_MIN ? 0 : luts[256u * (n_luts - 1) + v];
	return v;
}

/* BF16 word from an exponent and a sign|mantissa byte. */
static inline uint16_t dfl_join(unsigned e, uint8_t sm)
{
	return (uint16_t)(((unsigned)(sm & 0x80) << 8) | (e << 7) | (sm & 0x7f));
}

#endif
