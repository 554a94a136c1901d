/*
 * Internal: the bits of a BF16 word, s eeeeeeee mmmmmmm (bit 15 sign, bits
 * 14..7 exponent, bits 6..0 mantissa), and conversions to and from float.
 * The one definition for the codec, the CUDA decoder, the forward passes
 * and the test kits.
 */
#ifndef DF11_BF16_H
#define DF11_BF16_H

#include <stdint.h>
#include <string.h>

#include "common/bytes.h"

/* The exponent byte and the sign|mantissa byte (s mmmmmmm) of a word, and
 * the word rebuilt from the two. */
DF11_HD uint32_t df11_bf16_exponent(uint16_t w) { return (w >> 7) & 0xffu; }
DF11_HD uint8_t df11_bf16_sm(uint16_t w)
{
	return (uint8_t)(((w >> 8) & 0x80u) | (w & 0x7fu));
}
DF11_HD uint16_t df11_bf16_join(uint32_t exponent, uint32_t sm)
{
	return (uint16_t)(((sm & 0x80u) << 8) | (exponent << 7) | (sm & 0x7fu));
}

/* BF16 -> float: exact. */
DF11_HD float df11_bf16_to_f32(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* float -> BF16, round to nearest even (as __float2bfloat16); a NaN stays
 * a quiet NaN with its sign. */
DF11_HD uint16_t df11_f32_to_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40u);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

#endif /* DF11_BF16_H */
