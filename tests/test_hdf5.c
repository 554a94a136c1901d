/*
 * The df11 HDF5 filter plugin (hdf5/df11_h5filter.c), through the system
 * libhdf5 exactly as a user program meets it: loaded from HDF5_PLUGIN_PATH
 * (ctest sets it to the build's plugin folder). DF11_H5_PLUGIN names the
 * .so for the tests that call the filter function directly.
 *
 * What each test would catch:
 *   filter_direct_*   wrong bits from a corrupt chunk (every single-bit
 *                     flip and every truncation of a payload must fail or
 *                     give the original words), odd chunk sizes accepted;
 *   h5_roundtrip      datasets with partial edge chunks, 1-D/2-D/3-D,
 *                     decoded wrongly or stored uncompressed;
 *   h5_type_check     a mandatory df11 filter accepted on a 32-bit type;
 *                     an optional one (h5py's way) storing junk;
 *   h5_corrupt_chunk  a damaged, truncated or wrong-sized chunk on disk
 *                     read as data instead of an error carrying df11's
 *                     reason;
 *   h5_large          a 64 MiB dataset in 4 MiB chunks not round-tripping.
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hdf5.h>
#include <H5PLextern.h>

#include "synth/synth.h"
#include "hdf5/df11_h5filter.h"

static const H5Z_class2_t *plugin_class(void)
{
	static const H5Z_class2_t *cls;
	if (cls)
		return cls;
	const char *path = getenv("DF11_H5_PLUGIN");
	assert_non_null(path);
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(lib);
	const void *(*info)(void);
	void *sym = dlsym(lib, "H5PLget_plugin_info");
	assert_non_null(sym);
	memcpy(&info, &sym, sizeof sym);
	cls = info();
	assert_int_equal(cls->id, DF11_H5_FILTER_ID);
	assert_int_equal(cls->version, H5Z_CLASS_T_VERS);
	return cls;
}

/* Runs the filter on a copy of in[0..n) in an HDF5-allocated buffer, as
 * the pipeline does. Returns the output size (0 = the filter failed) and
 * the output buffer in *out (NULL on failure). */
static size_t run_filter(unsigned flags, const void *in, size_t n, void **out)
{
	const H5Z_class2_t *cls = plugin_class();
	size_t buf_size = n ? n : 1;
	void *buf = H5allocate_memory(buf_size, 0);
	assert_non_null(buf);
	memcpy(buf, in, n);
	const unsigned cd[1] = { 2 };
	size_t r = cls->filter(flags, 1, cd, n, &buf_size, &buf);
	if (r == 0) {
		H5free_memory(buf);
		*out = NULL;
		return 0;
	}
	assert_true(r <= buf_size);
	*out = buf;
	return r;
}

static uint16_t *synth(uint64_t seed, uint64_t rows, uint64_t cols)
{
	uint16_t *w = malloc(rows * cols * 2);
	assert_non_null(w);
	df11_synth_matrix(seed, rows, cols, 0.02f, w);
	return w;
}

static void filter_direct_roundtrip(void **state)
{
	(void)state;
	uint64_t sizes[] = { 1, 2, 7, 64, 1000, 4096, 100003 };
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		uint64_t n = sizes[k];
		uint16_t *w = synth(k + 1, 1, n);
		void *enc, *dec;
		size_t enc_n = run_filter(0, w, n * 2, &enc);
		assert_true(enc_n > DF11_H5_HEADER_SIZE);
		assert_memory_equal(enc, DF11_H5_MAGIC, 4);
		if (n >= 4096)
			assert_true(enc_n < n * 2 * 3 / 4);
		size_t dec_n = run_filter(H5Z_FLAG_REVERSE, enc, enc_n, &dec);
		assert_int_equal(dec_n, n * 2);
		assert_memory_equal(dec, w, n * 2);
		H5free_memory(enc);
		H5free_memory(dec);
		free(w);
	}
	/* A chunk of odd size is not 16-bit data. */
	uint8_t odd[3] = { 1, 2, 3 };
	void *out;
	assert_int_equal(run_filter(0, odd, 3, &out), 0);
	/* set_local recorded another element size: refuse. */
	const H5Z_class2_t *cls = plugin_class();
	size_t bs = 8;
	void *buf = H5allocate_memory(bs, 0);
	memset(buf, 0, bs);
	const unsigned cd4[1] = { 4 };
	assert_int_equal(cls->filter(0, 1, cd4, 8, &bs, &buf), 0);
	H5free_memory(buf);
}

/* Every single-bit flip and every truncation of a payload: the filter
 * must fail, or (never seen, but the only other acceptable outcome)
 * return exactly the original words. */
static void filter_direct_corrupt(void **state)
{
	(void)state;
	const uint64_t n = 2048;
	uint16_t *w = synth(7, 32, 64);
	void *enc_buf, *dec;
	size_t enc_n = run_filter(0, w, n * 2, &enc_buf);
	assert_true(enc_n > 0);
	uint8_t *enc = malloc(enc_n);
	memcpy(enc, enc_buf, enc_n);
	H5free_memory(enc_buf);

	unsigned failed = 0, same = 0;
	for (size_t i = 0; i < enc_n; i++) {
		for (int b = 0; b < 8; b++) {
			enc[i] ^= (uint8_t)(1u << b);
			size_t r = run_filter(H5Z_FLAG_REVERSE, enc, enc_n, &dec);
			if (r == 0) {
				failed++;
			} else {
				assert_int_equal(r, n * 2);
				assert_memory_equal(dec, w, n * 2);
				H5free_memory(dec);
				same++;
			}
			enc[i] ^= (uint8_t)(1u << b);
		}
	}
	/* Bits of the stream's zero padding may flip harmlessly; everything
	 * else is covered by the structure checks or the checksum. */
	assert_true(failed > 0);
	print_message("bit flips: %u refused, %u decoded to the original\n",
		      failed, same);
	for (size_t len = 0; len < enc_n; len++)
		assert_int_equal(run_filter(H5Z_FLAG_REVERSE, enc, len, &dec), 0);
	/* One byte too many. */
	uint8_t *longer = calloc(1, enc_n + 1);
	memcpy(longer, enc, enc_n);
	assert_int_equal(run_filter(H5Z_FLAG_REVERSE, longer, enc_n + 1, &dec), 0);
	/* Right structure, wrong checksum. */
	enc[8] ^= 1;
	assert_int_equal(run_filter(H5Z_FLAG_REVERSE, enc, enc_n, &dec), 0);
	enc[8] ^= 1;
	/* A future payload version. */
	enc[4] = DF11_H5_VERSION + 1;
	assert_int_equal(run_filter(H5Z_FLAG_REVERSE, enc, enc_n, &dec), 0);
	enc[4] = DF11_H5_VERSION;
	assert_int_equal(run_filter(H5Z_FLAG_REVERSE, enc, enc_n, &dec), n * 2);
	H5free_memory(dec);
	/* cd_values[1] (set_local: the chunk's bytes) must match. */
	const H5Z_class2_t *cls = plugin_class();
	for (unsigned want = (unsigned)n * 2 - 2; want <= n * 2 + 2; want += 2) {
		size_t bs = enc_n;
		void *buf = H5allocate_memory(bs, 0);
		memcpy(buf, enc, enc_n);
		const unsigned cd2[2] = { 2, want };
		size_t r = cls->filter(H5Z_FLAG_REVERSE, 2, cd2, enc_n, &bs, &buf);
		assert_int_equal(r, want == n * 2 ? n * 2 : 0);
		H5free_memory(buf);
	}
	free(longer);
	free(enc);
	free(w);
}

/* ------------------------------------------------ through an HDF5 file */

static hid_t make_dataset(hid_t file, const char *name, hid_t type, int rank,
			  const hsize_t *dims, const hsize_t *chunk,
			  unsigned flags)
{
	hid_t space = H5Screate_simple(rank, dims, NULL);
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	assert_true(H5Pset_chunk(dcpl, rank, chunk) >= 0);
	assert_true(H5Pset_filter(dcpl, DF11_H5_FILTER_ID, flags, 0, NULL) >= 0);
	hid_t ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl,
			      H5P_DEFAULT);
	H5Pclose(dcpl);
	H5Sclose(space);
	return ds;
}

static void write_and_check(hid_t file, const char *name, int rank,
			    const hsize_t *dims, const hsize_t *chunk,
			    const uint16_t *w, double max_ratio)
{
	hsize_t n = 1;
	for (int i = 0; i < rank; i++)
		n *= dims[i];
	hid_t ds = make_dataset(file, name, H5T_STD_U16LE, rank, dims, chunk,
				H5Z_FLAG_MANDATORY);
	assert_true(ds >= 0);
	assert_true(H5Dwrite(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL,
			     H5P_DEFAULT, w) >= 0);
	H5Dclose(ds);
	H5Fflush(file, H5F_SCOPE_GLOBAL);

	ds = H5Dopen2(file, name, H5P_DEFAULT);
	assert_true(ds >= 0);
	/* HDF5 stores edge chunks whole (padded with the fill value), so
	 * compare with the chunks' bytes, not the dataset's. */
	hsize_t n_chunks = 0, chunk_n = 1;
	hid_t fs = H5Dget_space(ds);
	assert_true(H5Dget_num_chunks(ds, fs, &n_chunks) >= 0);
	H5Sclose(fs);
	for (int i = 0; i < rank; i++)
		chunk_n *= chunk[i];
	double ratio = (double)H5Dget_storage_size(ds) /
		       (double)(n_chunks * chunk_n * 2);
	print_message("%s: %llu words, %llu chunks stored in %.1f%%\n", name,
		      (unsigned long long)n, (unsigned long long)n_chunks,
		      100 * ratio);
	assert_true(ratio < max_ratio);
	uint16_t *back = malloc(n * 2);
	memset(back, 0xa5, n * 2);
	assert_true(H5Dread(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL,
			    H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, w, n * 2);
	free(back);
	H5Dclose(ds);
}

static void h5_roundtrip(void **state)
{
	(void)state;
	assert_true(H5Zfilter_avail(DF11_H5_FILTER_ID) > 0);
	unsigned cfg = 0;
	assert_true(H5Zget_filter_info(DF11_H5_FILTER_ID, &cfg) >= 0);
	assert_true(cfg & H5Z_FILTER_CONFIG_ENCODE_ENABLED);
	assert_true(cfg & H5Z_FILTER_CONFIG_DECODE_ENABLED);

	const char *path = "test_hdf5_roundtrip.h5";
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	assert_true(f >= 0);
	/* 2-D with partial chunks on both edges. */
	hsize_t d2[2] = { 300, 1000 }, c2[2] = { 128, 256 };
	uint16_t *m = synth(11, 300, 1000);
	write_and_check(f, "model.layers.0.mlp.up_proj.weight", 2, d2, c2, m, 0.75);
	/* 1-D norm vector. */
	hsize_t d1[1] = { 1000 }, c1[1] = { 256 };
	uint16_t v[1000];
	df11_synth_norm(3, 1000, 1.0f, v);
	write_and_check(f, "norm", 1, d1, c1, v, 1.0);
	/* 3-D, and every 16-bit pattern once (NaN payloads included). */
	hsize_t d3[3] = { 4, 128, 128 }, c3[3] = { 1, 128, 100 };
	uint16_t *all = malloc(65536 * 2);
	for (uint32_t i = 0; i < 65536; i++)
		all[i] = (uint16_t)(i * 40503u);
	write_and_check(f, "every_pattern", 3, d3, c3, all, 1.01);
	H5Fclose(f);

	/* Reopened read-only, as another program would. */
	f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	hid_t ds = H5Dopen2(f, "model.layers.0.mlp.up_proj.weight", H5P_DEFAULT);
	uint16_t *back = malloc(300 * 1000 * 2);
	assert_true(H5Dread(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL,
			    H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, m, 300 * 1000 * 2);
	H5Dclose(ds);
	H5Fclose(f);
	remove(path);
	free(back);
	free(all);
	free(m);
}

static void h5_type_check(void **state)
{
	(void)state;
	const char *path = "test_hdf5_types.h5";
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	hsize_t d[1] = { 100 }, c[1] = { 32 };
	H5E_BEGIN_TRY {
		hid_t bad = make_dataset(f, "f32", H5T_IEEE_F32LE, 1, d, c,
					 H5Z_FLAG_MANDATORY);
		assert_true(bad < 0);
	} H5E_END_TRY;
	/* Optional (h5py's default): created, chunks stored unfiltered. */
	hid_t ds = make_dataset(f, "f32opt", H5T_IEEE_F32LE, 1, d, c,
				H5Z_FLAG_OPTIONAL);
	assert_true(ds >= 0);
	float x[100], y[100];
	for (int i = 0; i < 100; i++)
		x[i] = (float)i * 0.25f;
	assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL,
			     H5P_DEFAULT, x) >= 0);
	unsigned mask = 0;
	haddr_t addr;
	hsize_t size, off[1] = { 0 };
	assert_true(H5Dget_chunk_info_by_coord(ds, off, &mask, &addr, &size) >= 0);
	assert_true(mask & 1u); /* filter 0 (df11) was skipped */
	assert_true(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL,
			    H5P_DEFAULT, y) >= 0);
	assert_memory_equal(x, y, sizeof x);
	H5Dclose(ds);
	H5Fclose(f);
	remove(path);
}

static herr_t find_df11_error(unsigned n, const H5E_error2_t *e, void *found)
{
	(void)n;
	if (e->desc && strstr(e->desc, "df11 filter: corrupt"))
		*(int *)found = 1;
	return 0;
}

static void h5_corrupt_chunk(void **state)
{
	(void)state;
	const char *path = "test_hdf5_corrupt.h5";
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	hsize_t d[2] = { 64, 512 }, c[2] = { 64, 256 };
	uint16_t *w = synth(5, 64, 512);
	write_and_check(f, "w", 2, d, c, w, 0.75);
	hid_t ds = H5Dopen2(f, "w", H5P_DEFAULT);
	hsize_t off[2] = { 0, 256 }, csize = 0;
	assert_true(H5Dget_chunk_storage_size(ds, off, &csize) >= 0);
	uint8_t *chunk = malloc(csize);
	uint32_t mask = 0;
	assert_true(H5Dread_chunk(ds, H5P_DEFAULT, off, &mask, chunk) >= 0);
	assert_int_equal(mask, 0);
	assert_memory_equal(chunk, DF11_H5_MAGIC, 4);

	/* Damage one byte in the middle of the sign|mantissa plane and
	 * store the chunk back as if it came off a bad disk. */
	chunk[csize / 2] ^= 0x10;
	assert_true(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, off, csize, chunk) >= 0);
	uint16_t *back = malloc(64 * 512 * 2);
	herr_t r;
	H5E_BEGIN_TRY {
		r = H5Dread(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL,
			    H5P_DEFAULT, back);
	} H5E_END_TRY;
	assert_true(r < 0);
	/* The other chunk still reads. */
	hsize_t start[2] = { 0, 0 }, count[2] = { 64, 256 };
	hid_t fs = H5Dget_space(ds);
	H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
	hid_t ms = H5Screate_simple(2, count, NULL);
	assert_true(H5Dread(ds, H5T_NATIVE_UINT16, ms, fs, H5P_DEFAULT,
			    back) >= 0);
	for (int i = 0; i < 64; i++)
		assert_memory_equal(back + i * 256, w + i * 512, 256 * 2);
	H5Sclose(ms);
	H5Sclose(fs);

	/* df11's reason is on the error stack (from H5Epush2 at run time). */
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	r = H5Dread(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, back);
	assert_true(r < 0);
	int found = 0;
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_df11_error, &found);
	assert_true(found);

	/* A truncated chunk. */
	chunk[csize / 2] ^= 0x10;
	assert_true(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, off, csize - 9, chunk) >= 0);
	r = H5Dread(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, back);
	assert_true(r < 0);
	/* A well-formed payload of the wrong size (half a chunk). */
	void *half;
	size_t half_n = run_filter(0, w, 64 * 128 * 2, &half);
	assert_true(half_n > 0);
	assert_true(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, off, half_n, half) >= 0);
	H5free_memory(half);
	r = H5Dread(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, back);
	assert_true(r < 0);
	/* Restored, it reads again. */
	assert_true(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, off, csize, chunk) >= 0);
	assert_true(H5Dread(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL,
			    H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, w, 64 * 512 * 2);
	H5Eclear2(H5E_DEFAULT);
	H5Dclose(ds);
	H5Fclose(f);
	remove(path);
	free(back);
	free(chunk);
	free(w);
}

/* 64 MiB of BF16 in 16 chunks of 4 MiB. */
static void h5_large(void **state)
{
	(void)state;
	const char *path = "test_hdf5_large.h5";
	hsize_t d[2] = { 8192, 4096 }, c[2] = { 512, 4096 };
	uint16_t *w = synth(99, 8192, 4096);
	hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	write_and_check(f, "big", 2, d, c, w, 0.72);
	H5Fclose(f);
	remove(path);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(filter_direct_roundtrip),
		cmocka_unit_test(filter_direct_corrupt),
		cmocka_unit_test(h5_roundtrip),
		cmocka_unit_test(h5_type_check),
		cmocka_unit_test(h5_corrupt_chunk),
		cmocka_unit_test(h5_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
