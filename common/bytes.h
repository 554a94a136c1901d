/*
 * Internal: byte-level primitives shared by every layer, for the C
 * compiler and nvcc alike. Fields of files are little-endian and read
 * through these helpers, never by laying a struct over untrusted bytes.
 */
#ifndef DF11_BYTES_H
#define DF11_BYTES_H

#include <stdint.h>
#include <string.h>

/* Functions that both the CPU code and CUDA kernels use. */
#if defined(__CUDACC__)
#define DF11_HD __host__ __device__ __forceinline__
#else
#define DF11_HD static inline
#endif

/* Little-endian fields at any alignment, on any host. */
DF11_HD uint16_t df11_rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
DF11_HD uint32_t df11_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}
DF11_HD uint64_t df11_rd64(const uint8_t *p)
{
	return (uint64_t)df11_rd32(p) | ((uint64_t)df11_rd32(p + 4) << 32);
}
DF11_HD void df11_wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
DF11_HD void df11_wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
DF11_HD void df11_wr64(uint8_t *p, uint64_t v)
{
	df11_wr32(p, (uint32_t)v);
	df11_wr32(p + 4, (uint32_t)(v >> 32));
}

/* Native-order unaligned access for the CPU hot loops, which build only on
 * little-endian hosts (codec/codec_util.h refuses others). */
DF11_HD uint64_t df11_load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
DF11_HD uint16_t df11_load16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}
DF11_HD void df11_store64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
DF11_HD void df11_store32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* x rounded up to a multiple of a (a power of two). */
DF11_HD uint64_t df11_align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1u) & ~(a - 1u);
}
DF11_HD uint64_t df11_round_up16(uint64_t x) { return df11_align_up(x, 16u); }

#endif /* DF11_BYTES_H */
