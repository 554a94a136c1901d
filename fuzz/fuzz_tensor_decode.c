/*
 * Fuzz target: an encoded tensor from untrusted bytes (df11_parse,
 * df11_inspect, df11_decode, df11_decode_range, df11_decode_reference).
 *
 * Input: the encoded tensor itself. Properties:
 *   - nothing crashes, reads out of bounds or hangs, whatever the bytes;
 *   - parse, inspect and both decoders agree on whether the header is
 *     valid, and inspect describes what parse saw;
 *   - the reference decoder checks every code, gap and block start; when
 *     it accepts, the fast decoder must accept too and give the same words,
 *     and every range decode must give the same slice;
 *   - when both decoders accept, they agree word for word, even on
 *     corruption the index cannot reveal;
 *   - output buffers are sized from the header only after parse has
 *     checked it against the input length, so memory stays bounded by a
 *     small multiple of the input (n_elems <= stream_bits <= 8 * size).
 */
#include "df11.h"
#include "codec/parse.h"
#include "fuzz/fuzz.h"

static df11_decoder *decoder(int threads)
{
	/* Kept across inputs, as a server keeps its decoder: exercises the
	 * cached tables and scratch being reused for a different tensor. */
	static df11_decoder *d[2];
	int i = threads > 1;
	if (!d[i])
		d[i] = df11_decoder_new(threads);
	FUZZ_CHECK(d[i] != NULL, "decoder_new");
	return d[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	df11_parsed P;
	df11_tensor_info info;
	df11_result rp = df11_parse(data, size, &P);
	df11_result ri = df11_inspect(data, size, &info);
	FUZZ_CHECK(rp == ri, "parse %d, inspect %d", (int)rp, (int)ri);
	if (rp != DF11_OK) {
		uint16_t w;
		FUZZ_CHECK(df11_decode_reference(data, size, &w, 1) == rp,
			   "reference decoder accepts what parse refused");
		FUZZ_CHECK(df11_decode(decoder(1), data, size, &w, 1) == rp,
			   "fast decoder accepts what parse refused");
		return 0;
	}
	const uint64_t n = P.layout.n_elems;
	FUZZ_CHECK(info.n_elems == n && info.encoded_size == size &&
		   info.codec == (int)P.layout.codec,
		   "inspect disagrees with parse");
	FUZZ_CHECK(P.layout.total_size == size, "parse accepted %zu bytes for "
		   "a %llu-byte tensor", size,
		   (unsigned long long)P.layout.total_size);
	FUZZ_CHECK(n <= 8 * (uint64_t)size, "%llu elements in %zu bytes",
		   (unsigned long long)n, size);

	size_t nb = (size_t)n * 2 + 2;
	uint16_t *ref = malloc(nb), *fast = malloc(nb), *part = malloc(nb);
	FUZZ_CHECK(ref && fast && part, "out of memory for %llu elements",
		   (unsigned long long)n);
	memset(ref, 0xa5, nb);
	memset(fast, 0x5a, nb);
	df11_result rr = df11_decode_reference(data, size, ref, n);
	df11_result rf = df11_decode(decoder(1), data, size, fast, n);
	FUZZ_CHECK(rr == DF11_OK || rr == DF11_BAD_DATA, "reference: %d",
		   (int)rr);
	FUZZ_CHECK(rf == DF11_OK || rf == DF11_BAD_DATA, "fast: %d", (int)rf);
	if (rr == DF11_OK)
		FUZZ_CHECK(rf == DF11_OK, "fast decoder refused a tensor the "
			   "reference accepts: %s", df11_last_error());
	if (rr == DF11_OK && rf == DF11_OK)
		FUZZ_CHECK(n == 0 || memcmp(ref, fast, 2 * n) == 0,
			   "fast and reference decoders disagree");

	/* The 2-thread decoder only splits tensors of millions of elements;
	 * on small ones it must still give the same answer. */
	memset(part, 0x33, nb);
	df11_result r2 = df11_decode(decoder(2), data, size, part, n);
	FUZZ_CHECK(r2 == rf, "1 thread: %d, 2 threads: %d", (int)rf, (int)r2);
	if (r2 == DF11_OK)
		FUZZ_CHECK(n == 0 || memcmp(part, fast, 2 * n) == 0,
			   "decoders with 1 and 2 threads disagree");

	/* Ranges chosen from the input's hash: a slice, a one-element
	 * range, and the tail. */
	uint64_t h = fuzz_hash(data, size);
	uint64_t first = n ? h % (n + 1) : 0;
	uint64_t ranges[3][2] = {
		{first, n ? (h >> 32) % (n - first + 1) : 0},
		{n ? (h >> 16) % n : 0, n ? 1 : 0},
		{n - (n < 100 ? n : 100), n < 100 ? n : 100},
	};
	for (int k = 0; k < 3; k++) {
		uint64_t f = ranges[k][0], c = ranges[k][1];
		memset(part, 0x77, nb);
		df11_result rg = df11_decode_range(decoder(1), data, size, f, c,
						   part);
		FUZZ_CHECK(rg == DF11_OK || rg == DF11_BAD_DATA, "range: %d",
			   (int)rg);
		if (rr == DF11_OK)
			FUZZ_CHECK(rg == DF11_OK, "range %llu+%llu refused on a "
				   "valid tensor: %s", (unsigned long long)f,
				   (unsigned long long)c, df11_last_error());
		if (rg == DF11_OK && rr == DF11_OK)
			FUZZ_CHECK(c == 0 || memcmp(part, ref + f, 2 * c) == 0,
				   "range %llu+%llu differs from the reference",
				   (unsigned long long)f, (unsigned long long)c);
		/* Same blocks, same decoder: a range never disagrees with
		 * the whole-tensor decode, even on corrupt input. */
		if (rg == DF11_OK && rf == DF11_OK)
			FUZZ_CHECK(c == 0 || memcmp(part, fast + f, 2 * c) == 0,
				   "range %llu+%llu differs from the whole decode",
				   (unsigned long long)f, (unsigned long long)c);
	}
	/* Out-of-range requests are the caller's error, never a read. */
	FUZZ_CHECK(df11_decode_range(decoder(1), data, size, n, 1, part) ==
		   DF11_INVALID_ARG, "range past the end accepted");
	free(ref);
	free(fast);
	free(part);
	return 0;
}
