/*
 * The .df11 container layout, defined once for its reader (model.c), its
 * writer (container.c) and the tools that forge test files. docs/FORMAT.md
 * has the prose version.
 *
 * Container (.df11 file), all integers little-endian; docs/FORMAT.md has the
 * prose version:
 *
 *   0       file header, 64 bytes
 *             0  u8[8] magic "DF11CKPT"
 *             8  u16   version major (1), u16 version minor (0)
 *             12 u32   source kind: 0 = one .safetensors file, 1 = a folder
 *             16 u8[40] zero
 *             56 u64   XXH3-64 of bytes 0..56
 *   256...  sections, each starting at a multiple of 256 (zero padding):
 *           tensor payloads, safetensors header bytes, carried files
 *   D       directory (file records, then tensor records), dir_size bytes
 *   end-64  trailer, 64 bytes
 *             0  u8[8] magic "DF11DIR\0"
 *             8  u64   D (directory offset)     16 u64 dir_size
 *             24 u64   XXH3-64 of the directory 32 u64 n_files
 *             40 u64   n_tensors                48 u64 zero
 *             56 u64   XXH3-64 of bytes 0..56
 *
 * File record (48 bytes + name):
 *   0 u8 type (0 = safetensors, 1 = plain file)  1 u8[3] zero
 *   4 u32 name_len  8 u64 original file size
 *   16 u64 section offset  24 u64 section size
 *      (safetensors: the first 8 + N bytes of the file; plain: all of it)
 *   32 u64 XXH3-64 of the section
 *   40 u32 first tensor record  44 u32 tensor count  (safetensors only)
 *   48 name (relative path, UTF-8, no NUL)
 * Tensor record (64 bytes + 8 * ndim + name):
 *   0 u32 file index  4 u8 dtype  5 u8 codec (0 = stored, 1 = df11)
 *   6 u8 ndim  7 u8 zero  8 u32 name_len  12 u32 zero
 *   16 u64 begin (in the original data area)  24 u64 nbytes (original)
 *   32 u64 payload offset  40 u64 payload size
 *   48 u64 XXH3-64 of the original bytes  56 u64 XXH3-64 of the payload
 *   64 u64 shape[ndim]  then name
 */
#ifndef DF11_CONTAINER_LAYOUT_H
#define DF11_CONTAINER_LAYOUT_H

#define DF11_CT_MAGIC "DF11CKPT"
#define DF11_CT_TRAILER_MAGIC "DF11DIR"  /* 8 bytes with its NUL */
#define DF11_CT_VERSION_MAJOR 1
#define DF11_CT_VERSION_MINOR 0
#define DF11_CT_HEADER_SIZE 64u
#define DF11_CT_TRAILER_SIZE 64u
#define DF11_CT_ALIGN 256u
#define DF11_CT_FILE_REC 48u
#define DF11_CT_TENSOR_REC 64u
#define DF11_CT_MAX_NAME 4096u
#define DF11_CT_MAX_FILES 100000u
#define DF11_CT_MAX_TENSORS 10000000u

/* Source kind (file header). */
enum { DF11_SRC_FILE = 0, DF11_SRC_FOLDER = 1 };

/* File header fields (byte offsets). */
enum {
	DF11_CT_HDR_MAGIC = 0,      /* u8[8] */
	DF11_CT_HDR_MAJOR = 8,      /* u16 */
	DF11_CT_HDR_MINOR = 10,     /* u16 */
	DF11_CT_HDR_SOURCE = 12,    /* u32 DF11_SRC_* */
	DF11_CT_HDR_SUM = 56        /* u64 XXH3-64 of bytes 0..56 */
};

/* Trailer fields. */
enum {
	DF11_CT_TRL_MAGIC = 0,      /* u8[8] */
	DF11_CT_TRL_DIR_OFF = 8,    /* u64 */
	DF11_CT_TRL_DIR_SIZE = 16,  /* u64 */
	DF11_CT_TRL_DIR_SUM = 24,   /* u64 XXH3-64 of the directory */
	DF11_CT_TRL_N_FILES = 32,   /* u64 */
	DF11_CT_TRL_N_TENSORS = 40, /* u64 */
	DF11_CT_TRL_SUM = 56        /* u64 XXH3-64 of bytes 0..56 */
};

/* The bytes both checksums of the header and of the trailer cover. */
#define DF11_CT_SUMMED 56u

/* File record fields; the name follows at DF11_CT_FILE_REC. */
enum {
	DF11_CT_FR_TYPE = 0,        /* u8 0 safetensors, 1 plain; u8[3] zero */
	DF11_CT_FR_NAME_LEN = 4,    /* u32 */
	DF11_CT_FR_ORIG_SIZE = 8,   /* u64 */
	DF11_CT_FR_OFF = 16,        /* u64 section offset */
	DF11_CT_FR_SIZE = 24,       /* u64 section size */
	DF11_CT_FR_SUM = 32,        /* u64 XXH3-64 of the section */
	DF11_CT_FR_FIRST = 40,      /* u32 first tensor record */
	DF11_CT_FR_COUNT = 44       /* u32 tensor count */
};

/* Tensor record fields; shape[ndim] follows at DF11_CT_TR_SHAPE, then the
 * name. */
enum {
	DF11_CT_TR_FILE = 0,        /* u32 file index */
	DF11_CT_TR_DTYPE = 4,       /* u8 df11_dtype */
	DF11_CT_TR_CODEC = 5,       /* u8 0 stored, 1 df11 */
	DF11_CT_TR_NDIM = 6,        /* u8; u8 zero at 7 */
	DF11_CT_TR_NAME_LEN = 8,    /* u32; u32 zero at 12 */
	DF11_CT_TR_BEGIN = 16,      /* u64 offset in the original data area */
	DF11_CT_TR_NBYTES = 24,     /* u64 original size */
	DF11_CT_TR_OFF = 32,        /* u64 payload offset */
	DF11_CT_TR_SIZE = 40,       /* u64 payload size */
	DF11_CT_TR_SUM_ORIG = 48,   /* u64 XXH3-64 of the original bytes */
	DF11_CT_TR_SUM_STORED = 56, /* u64 XXH3-64 of the payload */
	DF11_CT_TR_SHAPE = 64       /* u64[ndim] */
};

#endif
