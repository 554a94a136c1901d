/*
 * libdf11_h5filter.so: the df11 codec as a dynamically loaded HDF5 filter.
 *
 * HDF5 finds the plugin through HDF5_PLUGIN_PATH, calls H5PLget_plugin_type
 * and H5PLget_plugin_info, and registers the H5Z_class2_t we return. The
 * plugin is NOT linked against libhdf5: h5py wheels carry their own libhdf5
 * (2.0 in h5py 3.16) next to the system's (1.10 on Debian 12), and a plugin
 * linked to one would drag a second copy of the library, with its own
 * global state, into a process that uses the other. The class struct, the
 * flags and hid_t are stable ABI across 1.10 .. 2.0, so the headers alone
 * are enough to be loaded by either.
 *
 * Three things do need the library that loaded us: checking the datatype
 * size at dataset creation (H5Tget_size), putting df11's reason for a
 * failure on the HDF5 error stack (H5Epush2) and allocating the chunk
 * buffers the way HDF5 frees them (H5allocate_memory / H5free_memory). We
 * find that library at run time: H5PLget_plugin_info is called from inside
 * it, so its return address lies in it; dladdr names the file and dlsym
 * looks the functions up there (not in the global scope, where h5py's
 * private copy is invisible). Where the lookup fails the filter still
 * works: any chunk of 16-bit words round-trips bit for bit, a chunk of odd
 * size is refused, buffers come from malloc (what HDF5's release builds use
 * too), and failures carry HDF5's generic message only.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <H5PLextern.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "df11.h"
#include "common/error.h"
#include "hdf5/df11_h5filter.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the df11 HDF5 filter reads chunks as little-endian 16-bit words"
#endif

/* -------------------------------------------- the HDF5 that loaded us */

typedef size_t (*tget_size_fn)(hid_t type_id);
typedef herr_t (*epush2_fn)(hid_t stack, const char *file, const char *func,
			    unsigned line, hid_t cls, hid_t maj, hid_t min,
			    const char *fmt, ...);
typedef herr_t (*get_filter_fn)(hid_t plist, H5Z_filter_t id, unsigned *flags,
			      size_t *cd_nelmts, unsigned cd_values[],
			      size_t namelen, char name[], unsigned *config);
typedef herr_t (*modify_filter_fn)(hid_t plist, H5Z_filter_t id,
				   unsigned flags, size_t cd_nelmts,
				   const unsigned cd_values[]);
typedef int (*get_chunk_fn)(hid_t plist, int max_ndims, hsize_t dims[]);
typedef void *(*allocate_fn)(size_t size, hbool_t clear);
typedef herr_t (*free_fn)(void *p);

static struct {
	int looked_up;
	tget_size_fn tget_size;
	get_filter_fn get_filter;
	modify_filter_fn modify_filter;
	get_chunk_fn get_chunk;
	epush2_fn epush2;
	const hid_t *err_cls, *maj_pline, *min_cantfilter; /* H5E_*_g */
	allocate_fn allocate;
	free_fn release;
} h5;

/* Only in the library that loaded us when we know it: the global scope
 * may hold another HDF5 (the system's, next to h5py's private one), and
 * its functions must not see the other library's ids. */
static void *lookup(void *lib, const char *name)
{
	return dlsym(lib ? lib : RTLD_DEFAULT, name);
}

/* ISO C has no cast from void * to a function pointer; memcpy is the
 * portable way to take dlsym's answer. */
#define LOOKUP_FN(lib, dst, name)                                          \
	do {                                                               \
		void *p_ = lookup(lib, name);                              \
		memcpy(&(dst), &p_, sizeof p_);                            \
	} while (0)

static void find_hdf5(void *caller)
{
	Dl_info info;
	void *lib = NULL;
	if (h5.looked_up)
		return;
	h5.looked_up = 1;
	/* RTLD_NOLOAD: only a handle to what is already mapped, never a
	 * second load. */
	if (caller && dladdr(caller, &info) && info.dli_fname)
		lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
	LOOKUP_FN(lib, h5.tget_size, "H5Tget_size");
	LOOKUP_FN(lib, h5.get_filter, "H5Pget_filter_by_id2");
	LOOKUP_FN(lib, h5.modify_filter, "H5Pmodify_filter");
	LOOKUP_FN(lib, h5.get_chunk, "H5Pget_chunk");
	LOOKUP_FN(lib, h5.epush2, "H5Epush2");
	LOOKUP_FN(lib, h5.allocate, "H5allocate_memory");
	LOOKUP_FN(lib, h5.release, "H5free_memory");
	h5.err_cls = lookup(lib, "H5E_ERR_CLS_g");
	h5.maj_pline = lookup(lib, "H5E_PLINE_g");
	h5.min_cantfilter = lookup(lib, "H5E_CANTFILTER_g");
	if (!h5.allocate || !h5.release)
		h5.allocate = NULL, h5.release = NULL;
}

static void *buf_alloc(size_t size)
{
	return h5.allocate ? h5.allocate(size, 0) : malloc(size);
}

static void buf_free(void *p)
{
	if (h5.release)
		h5.release(p);
	else
		free(p);
}

/* Records why the filter failed where h5dump and h5py show it; returns 0,
 * the filter's failure value. */
static size_t fail(const char *func, const char *why)
{
	if (h5.epush2 && h5.err_cls && h5.maj_pline && h5.min_cantfilter)
		h5.epush2(H5E_DEFAULT, __FILE__, func, __LINE__, *h5.err_cls,
			  *h5.maj_pline, *h5.min_cantfilter,
			  "df11 filter: %s", why);
	return 0;
}

/* ------------------------------------------------------------ filter */

size_t df11_h5_payload_bound(size_t nbytes)
{
	return DF11_H5_HEADER_SIZE + df11_encode_bound(nbytes / 2);
}

df11_result df11_h5_payload_encode(const void *src, size_t nbytes,
				   void *dst_v, size_t dst_capacity,
				   size_t *size_ret)
{
	uint8_t *dst = dst_v;
	if (nbytes == 0 || nbytes % 2 != 0 ||
	    (unsigned long long)nbytes > DF11_H5_MAX_CHUNK_BYTES)
		return df11_fail(DF11_INVALID_ARG, "hdf5 chunk of %zu bytes: "
				 "not a whole number of 16-bit words, or over "
				 "4 GiB", nbytes);
	if (dst_capacity < DF11_H5_HEADER_SIZE)
		return df11_fail(DF11_BUFFER_TOO_SMALL, "hdf5 chunk payload: "
				 "%zu bytes of room", dst_capacity);
	uint64_t n = nbytes / 2;
	const uint16_t *words = src;
	uint16_t *copy = NULL;
	if ((uintptr_t)src % _Alignof(uint16_t) != 0) {
		if (!(copy = malloc(nbytes)))
			return df11_fail(DF11_NOMEM, "hdf5 chunk of %zu bytes",
					 nbytes);
		memcpy(copy, src, nbytes);
		words = copy;
	}
	df11_encode_options opt = { .threads = 1 };
	size_t enc_size = 0;
	df11_result r = df11_encode(words, n, &opt, dst + DF11_H5_HEADER_SIZE,
				    dst_capacity - DF11_H5_HEADER_SIZE,
				    &enc_size);
	free(copy);
	if (r != DF11_OK)
		return r;
	memcpy(dst, DF11_H5_MAGIC, 4);
	dst[4] = DF11_H5_VERSION;
	dst[5] = dst[6] = dst[7] = 0;
	uint64_t sum = XXH3_64bits(src, nbytes);
	for (int i = 0; i < 8; i++)
		dst[8 + i] = (uint8_t)(sum >> (8 * i));
	*size_ret = DF11_H5_HEADER_SIZE + enc_size;
	return DF11_OK;
}

static size_t encode_chunk(size_t cd_nelmts, const unsigned cd_values[],
			   size_t nbytes, size_t *buf_size, void **buf)
{
	/* set_local recorded the element size. h5py adds filters as
	 * optional, and HDF5 keeps an optional filter whose can_apply said
	 * no; refusing here makes HDF5 store such chunks unfiltered. */
	if (cd_nelmts >= 1 && cd_values && cd_values[0] != 2)
		return fail(__func__, "the dataset type is not 16 bits wide; "
			    "df11 compresses 16-bit (BF16) data");
	if (nbytes == 0 || nbytes % 2 != 0 ||
	    (unsigned long long)nbytes > DF11_H5_MAX_CHUNK_BYTES)
		return fail(__func__, "a chunk must hold a whole number of "
			    "16-bit words (is the dataset type 16 bits wide?)");
	size_t cap = df11_h5_payload_bound(nbytes), size = 0;
	void *out = buf_alloc(cap);
	if (!out)
		return fail(__func__, "out of memory");
	df11_result r = df11_h5_payload_encode(*buf, nbytes, out, cap, &size);
	if (r != DF11_OK) {
		buf_free(out);
		return fail(__func__, df11_last_error());
	}
	buf_free(*buf);
	*buf = out;
	*buf_size = cap;
	return size;
}

static size_t decode_chunk(size_t cd_nelmts, const unsigned cd_values[],
			   size_t nbytes, size_t *buf_size, void **buf)
{
	const uint8_t *in = *buf;
	if (nbytes < DF11_H5_HEADER_SIZE)
		return fail(__func__, "corrupt chunk: "
			    "shorter than its header");
	if (memcmp(in, DF11_H5_MAGIC, 4) != 0)
		return fail(__func__, "corrupt chunk: "
			    "bad magic");
	if (in[4] != DF11_H5_VERSION)
		return fail(__func__, "chunk written by a "
			    "newer df11 (unknown payload version)");
	if (in[5] | in[6] | in[7])
		return fail(__func__, "corrupt chunk: "
			    "reserved bytes set");
	uint64_t sum = 0;
	for (int i = 0; i < 8; i++)
		sum |= (uint64_t)in[8 + i] << (8 * i);

	/* The encoded tensor's header says how many words it holds; df11
	 * checks it against the payload size, so a corrupt count cannot
	 * make us allocate more than about twice the payload. */
	const uint8_t *enc = in + DF11_H5_HEADER_SIZE;
	size_t enc_size = nbytes - DF11_H5_HEADER_SIZE;
	df11_tensor_info info;
	if (df11_inspect(enc, enc_size, &info) != DF11_OK)
		return fail(__func__, df11_last_error());
	if (info.n_elems == 0 ||
	    info.n_elems > DF11_H5_MAX_CHUNK_BYTES / 2)
		return fail(__func__, "corrupt chunk: "
			    "word count out of range");
	size_t out_bytes = (size_t)info.n_elems * 2;
	/* A well-formed payload of another size (a chunk from elsewhere)
	 * must not reach HDF5, which trusts the size of what we return. */
	if (cd_nelmts >= 2 && cd_values && cd_values[1] != 0 &&
	    out_bytes != cd_values[1])
		return fail(__func__, "corrupt chunk: its size differs from "
			    "the dataset's chunk size");
	uint16_t *out = buf_alloc(out_bytes);
	df11_decoder *dec = df11_decoder_new(1);
	if (!out || !dec) {
		if (out)
			buf_free(out);
		df11_decoder_free(dec);
		return fail(__func__, "out of memory");
	}
	df11_result r = df11_decode(dec, enc, enc_size, out, info.n_elems);
	df11_decoder_free(dec);
	if (r != DF11_OK) {
		buf_free(out);
		return fail(__func__, df11_last_error());
	}
	if (XXH3_64bits(out, out_bytes) != sum) {
		buf_free(out);
		return fail(__func__, "corrupt chunk: "
			    "decoded words differ from the stored checksum");
	}
	buf_free(*buf);
	*buf = out;
	*buf_size = out_bytes;
	return out_bytes;
}

/* H5Z_func_t. cd_values, when set_local could fill them: [0] the element
 * size, [1] the bytes of a whole chunk (0 if unknown). */
static size_t df11_h5_filter(unsigned int flags, size_t cd_nelmts,
			     const unsigned int cd_values[], size_t nbytes,
			     size_t *buf_size, void **buf)
{
	if (!buf || !*buf || !buf_size)
		return 0;
	if (flags & H5Z_FLAG_REVERSE)
		return decode_chunk(cd_nelmts, cd_values, nbytes, buf_size,
				    buf);
	return encode_chunk(cd_nelmts, cd_values, nbytes, buf_size, buf);
}

/* H5Z_can_apply_func_t, at dataset creation: 1 yes, 0 no, -1 error. Only
 * 16-bit types make sense; a mandatory df11 filter on anything else fails
 * H5Dcreate (an optional one is dropped) rather than storing junk-sized
 * chunks. Without H5Tget_size we cannot tell and say yes. */
static htri_t df11_h5_can_apply(hid_t dcpl_id, hid_t type_id, hid_t space_id)
{
	(void)dcpl_id;
	(void)space_id;
	if (!h5.tget_size)
		return 1;
	size_t size = h5.tget_size(type_id);
	if (size == 0)
		return -1;
	if (size != 2) {
		fail(__func__, "the dataset type is not 16 "
		     "bits wide; df11 compresses 16-bit (BF16) data");
		return 0;
	}
	return 1;
}

/* H5Z_set_local_func_t: stores the element size as cd_values[0], so that
 * the filter function, which sees only bytes, can refuse other types, and
 * a chunk's size in bytes as cd_values[1], so that decoding can check the
 * payload's word count against it. */
static herr_t df11_h5_set_local(hid_t dcpl_id, hid_t type_id, hid_t space_id)
{
	unsigned flags = 0, cd[8];
	size_t nelmts = 8;
	hsize_t dims[H5S_MAX_RANK];
	(void)space_id;
	if (!h5.tget_size || !h5.get_filter || !h5.modify_filter ||
	    !h5.get_chunk)
		return 0;
	size_t size = h5.tget_size(type_id);
	int rank = h5.get_chunk(dcpl_id, H5S_MAX_RANK, dims);
	if (size == 0 || rank < 1 || rank > H5S_MAX_RANK)
		return -1;
	if (h5.get_filter(dcpl_id, (H5Z_filter_t)DF11_H5_FILTER_ID, &flags,
			  &nelmts, cd, 0, NULL, NULL) < 0)
		return -1;
	unsigned long long bytes = size;
	for (int i = 0; i < rank && bytes; i++)
		bytes = dims[i] && bytes <= DF11_H5_MAX_CHUNK_BYTES / dims[i]
				? bytes * dims[i]
				: 0; /* too big to be a chunk: unknown */
	cd[0] = size > 0xffffu ? 0xffffu : (unsigned)size;
	cd[1] = (unsigned)bytes;
	return h5.modify_filter(dcpl_id, (H5Z_filter_t)DF11_H5_FILTER_ID,
				flags, 2, cd);
}

static const H5Z_class2_t df11_h5_class = {
	.version = H5Z_CLASS_T_VERS,
	.id = (H5Z_filter_t)DF11_H5_FILTER_ID,
	.encoder_present = 1,
	.decoder_present = 1,
	.name = DF11_H5_FILTER_NAME,
	.can_apply = df11_h5_can_apply,
	.set_local = df11_h5_set_local,
	.filter = df11_h5_filter,
};

H5PL_type_t H5PLget_plugin_type(void)
{
	return H5PL_TYPE_FILTER;
}

const void *H5PLget_plugin_info(void)
{
	/* HDF5 calls this once after dlopen, under its API lock. */
	find_hdf5(__builtin_return_address(0));
	return &df11_h5_class;
}
