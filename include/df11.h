/*
 * df11: lossless compression of BF16 weights (Huffman-coded exponents,
 * raw sign|mantissa bytes) with a block layout built for parallel decoding.
 *
 * This is the one public header of libdf11. Conventions:
 *   - every function returns a df11_result; 0 (DF11_OK) is success;
 *   - buffers are a pointer plus a byte or element count;
 *   - out-parameters end in _ret;
 *   - *_free() accepts NULL;
 *   - the library never prints and never exits. After a failure,
 *     df11_last_error() gives a one-line description for this thread.
 *
 * The byte layout of an encoded tensor is specified in docs/FORMAT.md.
 */
#ifndef DF11_H
#define DF11_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The one place the version is set; CMake reads it from here. */
#define DF11_VERSION_MAJOR 0
#define DF11_VERSION_MINOR 2
#define DF11_VERSION_PATCH 0
#define DF11_VERSION_STRING "0.2.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for compile-time comparisons. */
#define DF11_VERSION_NUMBER \
	(DF11_VERSION_MAJOR * 10000 + DF11_VERSION_MINOR * 100 + DF11_VERSION_PATCH)

/* Marks the functions libdf11 exports; everything else is hidden. */
#ifndef DF11_API
#if defined(_WIN32) && defined(DF11_BUILDING_SHARED)
#define DF11_API __declspec(dllexport)
#elif defined(_WIN32) && defined(DF11_SHARED)
#define DF11_API __declspec(dllimport)
#elif defined(__GNUC__)
#define DF11_API __attribute__((visibility("default")))
#else
#define DF11_API
#endif
#endif

/* The version of the library actually linked (which may differ from the
 * header's DF11_VERSION_* when a shared library was upgraded). */
DF11_API const char *df11_version_string(void);
DF11_API unsigned df11_version_number(void);

typedef enum df11_result {
	DF11_OK = 0,
	DF11_BAD_DATA = 1,         /* malformed, truncated or corrupt input */
	DF11_NOMEM = 2,            /* an allocation failed */
	DF11_IO = 3,               /* a system call on a file failed */
	DF11_UNSUPPORTED = 4,      /* valid but not supported (version, dtype) */
	DF11_CUDA = 5,             /* a CUDA call failed */
	DF11_INVALID_ARG = 6,      /* the caller passed an invalid argument */
	DF11_CHECKSUM = 7,         /* decoded data differs from its checksum */
	DF11_BUFFER_TOO_SMALL = 8, /* a caller buffer is too small */
	DF11_EXISTS = 9,           /* output exists and overwriting was not asked */
	DF11_LIMIT = 10,           /* input exceeds a documented size limit */
	DF11_NO_DEVICE = 11,       /* no usable GPU */
	DF11_NOT_FOUND = 12,       /* no tensor or file of that name */
	DF11_CANCELLED = 13,       /* a progress callback asked to stop */
} df11_result;

/* A short, static description of a result code. Never NULL. */
DF11_API const char *df11_strerror(df11_result r);

/* The message of the last failure in this thread: the result's text plus
 * what failed, e.g. "corrupt data: block 3 ends at bit 65541, expected
 * 65540". Empty string if nothing failed yet. */
DF11_API const char *df11_last_error(void);

/* Records a failure for df11_last_error() in this thread ("<strerror(r)>:
 * <message>") and returns r. For libraries layered on libdf11 (libdf11_cuda,
 * language bindings), so that their failures read like libdf11's own.
 * message may be NULL. */
DF11_API df11_result df11_set_error(df11_result r, const char *message);

/* ------------------------------------------------------------------------
 * Tensor codec: one BF16 tensor <-> one self-contained encoded byte string.
 * ---------------------------------------------------------------------- */

/* Longest Huffman code the format allows; decoders look up 12 bits at a
 * time and take a slow path for the rare longer codes (docs/FORMAT.md). */
#define DF11_MAX_CODE_LEN 15

enum df11_codec {
	DF11_CODEC_RAW = 0,    /* BF16 words stored as they are */
	DF11_CODEC_SINGLE = 1, /* one distinct exponent: sign|mantissa bytes only */
	DF11_CODEC_HUFFMAN = 2 /* Huffman-coded exponents + sign|mantissa bytes */
};

typedef struct df11_encode_options {
	int threads;        /* worker threads; <= 0 means 1 */
	int window_log2;    /* bits per decode window = 2^window_log2; 0 = default (11) */
	int block_log2;     /* windows per block = 2^block_log2; 0 = default (6, or
			       20 - window_log2 if smaller) */
	int max_code_len;   /* 0 = DF11_MAX_CODE_LEN; otherwise 2..15 */
	int force_raw;      /* store raw even if Huffman would be smaller */
	int reserved[8];    /* must be zero: room for new options, with zero
			       keeping today's behaviour (DF11_INVALID_ARG
			       otherwise, so an older library never ignores
			       an option it does not know) */
} df11_encode_options;

/* Upper bound of the encoded size of a tensor of n_elems BF16 values. */
DF11_API size_t df11_encode_bound(uint64_t n_elems);

/* Encodes src[0..n_elems) into dst (capacity dst_capacity bytes; at least
 * df11_encode_bound(n_elems) always suffices). opt may be NULL. The encoder
 * may use dst past *dst_size_ret as scratch: those bytes are unspecified. */
DF11_API df11_result df11_encode(const uint16_t *src, uint64_t n_elems,
			const df11_encode_options *opt, void *dst,
			size_t dst_capacity, size_t *dst_size_ret);

typedef struct df11_tensor_info {
	uint64_t n_elems;
	int codec;                  /* enum df11_codec */
	int max_code_len;           /* longest code in the table (0 if none) */
	int window_log2, block_log2;
	unsigned distinct_exponents;  /* exponents with a code (or 1) */
	uint64_t stream_bits;       /* exponent bitstream length */
	uint64_t n_windows, n_blocks;
	size_t encoded_size;        /* bytes of the whole encoded tensor */
	size_t index_bytes;         /* block starts + window gaps */
	size_t table_bytes;         /* serialized code table */
	uint8_t code_len[256];      /* code length per exponent (0 = absent) */
} df11_tensor_info;

/* Validates the header and code table of an encoded tensor and describes it.
 * Does not decode the stream. */
DF11_API df11_result df11_inspect(const void *src, size_t src_size,
			 df11_tensor_info *info_ret);

/* A CPU decoder: holds decode tables and per-thread scratch, so decode
 * calls do not allocate. Not thread-safe: one decoder per calling thread. */
typedef struct df11_decoder df11_decoder;

/* threads <= 0 means 1. Returns NULL if out of memory. */
DF11_API df11_decoder *df11_decoder_new(int threads);
DF11_API void df11_decoder_free(df11_decoder *dec);

/* Decodes a whole tensor into dst[0..n_elems); n_elems must equal the
 * tensor's element count. Fast table-driven decoder, multithreaded across
 * blocks. Checks the stream's structure (every block must end exactly
 * where the next begins); it cannot catch every corruption: the container
 * adds checksums for that. */
DF11_API df11_result df11_decode(df11_decoder *dec, const void *src, size_t src_size,
			uint16_t *dst, uint64_t n_elems);

/* Decodes elements [first, first + count) only, touching just the blocks
 * that hold them (e.g. embedding rows of the current tokens). */
DF11_API df11_result df11_decode_range(df11_decoder *dec, const void *src,
			      size_t src_size, uint64_t first, uint64_t count,
			      uint16_t *dst);

/* The reference decoder: bit by bit, single-threaded, slow and obviously
 * correct. It also checks every window gap and block start of the index,
 * which the fast decoder relies on only partly. The oracle for tests. */
DF11_API df11_result df11_decode_reference(const void *src, size_t src_size,
				  uint16_t *dst, uint64_t n_elems);

/* Exponent statistics of BF16 data (for reports and df11-info). */
typedef struct df11_exponent_stats {
	uint64_t count[256];
	uint64_t n_elems;
	unsigned distinct;
	double entropy_bits;  /* H(exponent), bits per element */
} df11_exponent_stats;

DF11_API void df11_exponent_histogram(const uint16_t *src, uint64_t n_elems,
			     df11_exponent_stats *stats_ret);

/* ------------------------------------------------------------------------
 * Checkpoints: a .safetensors file, a sharded checkpoint folder (with its
 * model.safetensors.index.json), or a .df11 container made by df11-encode.
 * Implemented in df11/model.c; the container format is in docs/FORMAT.md.
 * ---------------------------------------------------------------------- */

typedef enum df11_dtype {
	DF11_DTYPE_BOOL, DF11_DTYPE_U8, DF11_DTYPE_I8, DF11_DTYPE_U16,
	DF11_DTYPE_I16, DF11_DTYPE_F16, DF11_DTYPE_BF16, DF11_DTYPE_U32,
	DF11_DTYPE_I32, DF11_DTYPE_F32, DF11_DTYPE_U64, DF11_DTYPE_I64,
	DF11_DTYPE_F64, DF11_DTYPE_F8_E4M3, DF11_DTYPE_F8_E5M2,
	DF11_DTYPE_COUNT
} df11_dtype;

/* "BF16", "F32", ... as safetensors spells them; NULL if out of range. */
DF11_API const char *df11_dtype_name(df11_dtype t);
DF11_API size_t df11_dtype_size(df11_dtype t);

#define DF11_MAX_DIMS 8

typedef struct df11_tensor_desc {
	const char *name;      /* valid until the model is closed */
	df11_dtype dtype;
	int ndim;              /* 0 for a scalar */
	uint64_t shape[DF11_MAX_DIMS];
	uint64_t n_elems;
	uint64_t nbytes;       /* size of the original (decoded) bytes */
	int compressed;        /* stored df11-encoded (BF16 in a .df11) */
	uint64_t stored_bytes; /* size as stored in the file */
} df11_tensor_desc;

typedef struct df11_model df11_model;

DF11_API df11_result df11_model_open(const char *path, df11_model **model_ret);
DF11_API void df11_model_close(df11_model *m);

DF11_API size_t df11_model_num_tensors(const df11_model *m);
DF11_API df11_result df11_model_tensor(const df11_model *m, size_t i,
			      df11_tensor_desc *desc_ret);
/* DF11_NOT_FOUND if no tensor has that name. */
DF11_API df11_result df11_model_find(const df11_model *m, const char *name,
			    size_t *index_ret);

/* The tensor's original bytes (decoded if compressed), checked against the
 * stored checksum where the file has one. dst_size must equal nbytes.
 * read and read_range use the model's one decoder: call them from one
 * thread at a time (open the model once per thread otherwise). */
DF11_API df11_result df11_model_read(df11_model *m, size_t i, void *dst,
			    size_t dst_size);

/* BF16 elements [first, first + count) of a BF16 tensor, decoding only the
 * blocks that hold them (no checksum: it covers whole tensors). */
DF11_API df11_result df11_model_read_range(df11_model *m, size_t i, uint64_t first,
				  uint64_t count, uint16_t *dst);

/* The encoded tensor as stored in a .df11 container (mapped, valid until
 * close), for uploading to a GPU. DF11_UNSUPPORTED if not compressed. */
DF11_API df11_result df11_model_encoded(const df11_model *m, size_t i,
			       const void **data_ret, size_t *size_ret);

/* A non-weight file of the checkpoint ("config.json", tokenizer files):
 * from the folder, or carried inside the container. DF11_NOT_FOUND if
 * absent. The bytes stay valid until close. */
DF11_API df11_result df11_model_file(const df11_model *m, const char *name,
			    const void **data_ret, size_t *size_ret);

/* Decoder threads used by df11_model_read (default: the online CPUs). */
DF11_API df11_result df11_model_set_threads(df11_model *m, int threads);

/* ------------------------------------------------------------------------
 * Writing and checking containers (the df11-encode / -decode / -verify
 * pipelines). Outputs are written under a temporary name in the same
 * folder and renamed into place only when complete and checked; a failed
 * or cancelled run removes them.
 * ---------------------------------------------------------------------- */

/* Called after each tensor or file with the original bytes done so far and
 * in total. Returning non-zero cancels the run: it then fails with
 * DF11_CANCELLED and leaves no output. */
typedef int (*df11_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct df11_pack_options {
	int threads;              /* worker threads; <= 0 means 1 */
	int force;                /* replace an existing output */
	df11_progress_fn progress; /* may be NULL */
	void *progress_ctx;
	int reserved[8];          /* must be zero (see df11_encode_options) */
} df11_pack_options;

typedef struct df11_pack_stats {
	uint64_t n_files;         /* files of the checkpoint */
	uint64_t n_tensors;
	uint64_t n_compressed;    /* tensors stored df11-encoded */
	uint64_t bytes_in;        /* bytes read (original or container) */
	uint64_t bytes_out;       /* bytes written */
	uint64_t orig_bytes;      /* size of the original checkpoint */
	uint64_t container_bytes; /* size of the container */
	uint64_t bf16_elems;      /* elements of the compressed tensors */
	uint64_t bf16_stored;     /* their encoded bytes */
} df11_pack_stats;

/* input: a .safetensors file or a checkpoint folder; output: the .df11
 * container. DF11_EXISTS if output exists and opt->force is 0. */
DF11_API df11_result df11_pack(const char *input, const char *output,
		      const df11_pack_options *opt, df11_pack_stats *stats_ret);

/* Rebuilds the original file (or folder) from a container, byte for byte,
 * checking every checksum before the output is renamed into place. */
DF11_API df11_result df11_unpack(const char *input, const char *output,
			const df11_pack_options *opt, df11_pack_stats *stats_ret);

/* Called by df11_verify for each failing tensor or file. */
typedef void (*df11_verify_report_fn)(void *ctx, const char *what,
				      df11_result r, const char *message);

/* Decodes every tensor of a container and checks it against its stored
 * checksums; with against != NULL (the original file or folder) also
 * compares every tensor, header and carried file bit for bit. Each failure
 * is reported; the result is DF11_OK only if all is intact, DF11_CHECKSUM
 * (or DF11_BAD_DATA) if something differs, another code for I/O or usage
 * errors. *n_bad_ret (may be NULL) gets the number of failures. */
DF11_API df11_result df11_verify(const char *input, const char *against,
			const df11_pack_options *opt,
			df11_verify_report_fn report, void *report_ctx,
			uint64_t *n_bad_ret);

/* ------------------------------------------------------------------------
 * Checkpoint headers, for bindings that mirror safetensors' metadata().
 * ---------------------------------------------------------------------- */

/* The safetensors header of the file that holds tensor i, as in the
 * original file: the 8-byte little-endian length N, then N bytes of JSON
 * (with its "__metadata__" object, if any). From a .df11 container it is
 * the stored copy, checked against its checksum. Valid until close. */
DF11_API df11_result df11_model_tensor_header(const df11_model *m, size_t i,
				     const void **data_ret, size_t *size_ret);

/* ------------------------------------------------------------------------
 * The official DFloat11 format (the `dfloat11` Python package, 0.5.x;
 * docs/DFLOAT11.md). Reading needs nothing new: df11_model_open on a
 * DFloat11 folder shows the BF16 checkpoint it holds, and df11_unpack
 * writes that checkpoint out. Writing is df11_export_dfloat11.
 * ---------------------------------------------------------------------- */

/* Called for each group stored as plain BF16 weights because the official
 * kernel could not decode it coded (why: e.g. "a single exponent"). */
typedef void (*df11_dfloat11_note_fn)(void *ctx, const char *group,
				      const char *why);

typedef struct df11_dfloat11_options {
	int threads;              /* groups coded at once; <= 0 means 1 */
	int force;                /* replace an existing output */
	/* pattern_dict as JSON text ({"regex": ["attr", ...], ...}, Python
	 * regexes fully matching module paths, as the official compressor
	 * takes it); NULL: derived from config.json for Llama, Mistral,
	 * Qwen2, Qwen3, Gemma 2 and Gemma 3 text models. */
	const char *pattern_dict;
	df11_progress_fn progress;  /* may be NULL */
	void *progress_ctx;
	df11_dfloat11_note_fn note; /* may be NULL */
	void *note_ctx;
	int reserved[8];          /* must be zero (see df11_encode_options) */
} df11_dfloat11_options;

typedef struct df11_dfloat11_stats {
	uint64_t n_groups;        /* groups written */
	uint64_t n_plain;         /* of which stored as plain BF16 */
	uint64_t n_weights;       /* weights in the groups */
	uint64_t bf16_bytes;      /* their BF16 size */
	uint64_t stored_bytes;    /* what the groups take in the output */
} df11_dfloat11_stats;

/* input: anything df11_model_open opens (a .safetensors file, a checkpoint
 * folder, a .df11 container, a DFloat11 folder); output: the DFloat11
 * folder to create (one file per group, model.safetensors with the other
 * tensors, config.json with "dfloat11_config", other files carried).
 * DF11_EXISTS if output exists and opt->force is 0. */
DF11_API df11_result df11_export_dfloat11(const char *input, const char *output,
				 const df11_dfloat11_options *opt,
				 df11_dfloat11_stats *stats_ret);

#ifdef __cplusplus
}
#endif

#endif /* DF11_H */
