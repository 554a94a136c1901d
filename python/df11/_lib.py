"""ctypes declarations of libdf11's public C API (include/df11.h).

Where the shared library comes from, first match wins:
  1. the DF11_LIBRARY environment variable (a path to libdf11.so);
  2. the copy built by ``pip install`` inside this package (df11/lib/);
  3. an installed system libdf11 (ctypes.util.find_library("df11")).

Functions are called through ctypes.CDLL, which releases the GIL for the
duration of every foreign call: encodes and decodes in different Python
threads run in parallel.
"""

import ctypes
import ctypes.util
import glob
import os

_HERE = os.path.dirname(os.path.abspath(__file__))

# enum df11_result
OK = 0
BAD_DATA = 1
NOMEM = 2
IO = 3
UNSUPPORTED = 4
CUDA = 5
INVALID_ARG = 6
CHECKSUM = 7
BUFFER_TOO_SMALL = 8
EXISTS = 9
LIMIT = 10
NO_DEVICE = 11
NOT_FOUND = 12
CANCELLED = 13

# enum df11_dtype, in order
DTYPE_NAMES = ("BOOL", "U8", "I8", "U16", "I16", "F16", "BF16", "U32", "I32",
               "F32", "U64", "I64", "F64", "F8_E4M3", "F8_E5M2")
DTYPE_BF16 = 6
MAX_DIMS = 8


class encode_options(ctypes.Structure):
    _fields_ = [("threads", ctypes.c_int),
                ("window_log2", ctypes.c_int),
                ("block_log2", ctypes.c_int),
                ("max_code_len", ctypes.c_int),
                ("force_raw", ctypes.c_int),
                ("reserved", ctypes.c_int * 8)]


class tensor_info(ctypes.Structure):
    _fields_ = [("n_elems", ctypes.c_uint64),
                ("codec", ctypes.c_int),
                ("max_code_len", ctypes.c_int),
                ("window_log2", ctypes.c_int),
                ("block_log2", ctypes.c_int),
                ("distinct_exponents", ctypes.c_uint),
                ("stream_bits", ctypes.c_uint64),
                ("n_windows", ctypes.c_uint64),
                ("n_blocks", ctypes.c_uint64),
                ("encoded_size", ctypes.c_size_t),
                ("index_bytes", ctypes.c_size_t),
                ("table_bytes", ctypes.c_size_t),
                ("code_len", ctypes.c_uint8 * 256)]


class tensor_desc(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p),
                ("dtype", ctypes.c_int),
                ("ndim", ctypes.c_int),
                ("shape", ctypes.c_uint64 * MAX_DIMS),
                ("n_elems", ctypes.c_uint64),
                ("nbytes", ctypes.c_uint64),
                ("compressed", ctypes.c_int),
                ("stored_bytes", ctypes.c_uint64)]


progress_fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64,
                               ctypes.c_uint64)
verify_report_fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p,
                                    ctypes.c_int, ctypes.c_char_p)


class pack_options(ctypes.Structure):
    _fields_ = [("threads", ctypes.c_int),
                ("force", ctypes.c_int),
                ("progress", progress_fn),
                ("progress_ctx", ctypes.c_void_p),
                ("reserved", ctypes.c_int * 8)]


class pack_stats(ctypes.Structure):
    _fields_ = [("n_files", ctypes.c_uint64),
                ("n_tensors", ctypes.c_uint64),
                ("n_compressed", ctypes.c_uint64),
                ("bytes_in", ctypes.c_uint64),
                ("bytes_out", ctypes.c_uint64),
                ("orig_bytes", ctypes.c_uint64),
                ("container_bytes", ctypes.c_uint64),
                ("bf16_elems", ctypes.c_uint64),
                ("bf16_stored", ctypes.c_uint64)]


class cuda_job(ctypes.Structure):
    _fields_ = [("tensor", ctypes.c_size_t),
                ("first", ctypes.c_uint64),
                ("count", ctypes.c_uint64),
                ("dst", ctypes.c_void_p)]


def _candidates(stem):
    env = os.environ.get("DF11_CUDA_LIBRARY" if stem == "df11_cuda"
                         else "DF11_LIBRARY")
    if env:
        return [env]
    found = []
    for d in (os.path.join(_HERE, "lib"), os.path.join(_HERE, "lib64"), _HERE):
        found += sorted(glob.glob(os.path.join(d, "lib%s.so*" % stem)))
        found += sorted(glob.glob(os.path.join(d, "lib%s.dylib" % stem)))
        found += sorted(glob.glob(os.path.join(d, "%s.dll" % stem)))
    system = ctypes.util.find_library(stem)
    if system:
        found.append(system)
    return found


def _open(stem):
    errors = []
    for path in _candidates(stem):
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            errors.append("%s: %s" % (path, e))
    where = "; ".join(errors) if errors else "not found"
    var = "DF11_CUDA_LIBRARY" if stem == "df11_cuda" else "DF11_LIBRARY"
    raise OSError("cannot load lib%s (%s). Install the package with "
                  "`pip install ./python` from the df11 repository, or set "
                  "%s to the library's path." % (stem, where, var))


_P = ctypes.c_void_p
_SZ = ctypes.c_size_t
_U64 = ctypes.c_uint64
_R = ctypes.c_int

_SIGNATURES = {
    "df11_version_string": (ctypes.c_char_p, []),
    "df11_version_number": (ctypes.c_uint, []),
    "df11_strerror": (ctypes.c_char_p, [ctypes.c_int]),
    "df11_last_error": (ctypes.c_char_p, []),
    "df11_encode_bound": (_SZ, [_U64]),
    "df11_encode": (_R, [_P, _U64, ctypes.POINTER(encode_options), _P, _SZ,
                         ctypes.POINTER(_SZ)]),
    "df11_inspect": (_R, [_P, _SZ, ctypes.POINTER(tensor_info)]),
    "df11_decoder_new": (_P, [ctypes.c_int]),
    "df11_decoder_free": (None, [_P]),
    "df11_decode": (_R, [_P, _P, _SZ, _P, _U64]),
    "df11_decode_range": (_R, [_P, _P, _SZ, _U64, _U64, _P]),
    "df11_decode_reference": (_R, [_P, _SZ, _P, _U64]),
    "df11_dtype_name": (ctypes.c_char_p, [ctypes.c_int]),
    "df11_dtype_size": (_SZ, [ctypes.c_int]),
    "df11_model_open": (_R, [ctypes.c_char_p, ctypes.POINTER(_P)]),
    "df11_model_close": (None, [_P]),
    "df11_model_num_tensors": (_SZ, [_P]),
    "df11_model_tensor": (_R, [_P, _SZ, ctypes.POINTER(tensor_desc)]),
    "df11_model_find": (_R, [_P, ctypes.c_char_p, ctypes.POINTER(_SZ)]),
    "df11_model_read": (_R, [_P, _SZ, _P, _SZ]),
    "df11_model_read_range": (_R, [_P, _SZ, _U64, _U64, _P]),
    "df11_model_encoded": (_R, [_P, _SZ, ctypes.POINTER(_P),
                                ctypes.POINTER(_SZ)]),
    "df11_model_file": (_R, [_P, ctypes.c_char_p, ctypes.POINTER(_P),
                             ctypes.POINTER(_SZ)]),
    "df11_model_tensor_header": (_R, [_P, _SZ, ctypes.POINTER(_P),
                                      ctypes.POINTER(_SZ)]),
    "df11_model_set_threads": (_R, [_P, ctypes.c_int]),
    "df11_pack": (_R, [ctypes.c_char_p, ctypes.c_char_p,
                       ctypes.POINTER(pack_options), ctypes.POINTER(pack_stats)]),
    "df11_unpack": (_R, [ctypes.c_char_p, ctypes.c_char_p,
                         ctypes.POINTER(pack_options),
                         ctypes.POINTER(pack_stats)]),
    "df11_verify": (_R, [ctypes.c_char_p, ctypes.c_char_p,
                         ctypes.POINTER(pack_options), verify_report_fn, _P,
                         ctypes.POINTER(_U64)]),
}

_CUDA_SIGNATURES = {
    "df11_cuda_upload_size": (_SZ, [ctypes.POINTER(_P), ctypes.POINTER(_SZ),
                                    _SZ]),
    "df11_cuda_upload": (_R, [ctypes.POINTER(_P), ctypes.POINTER(_SZ), _SZ,
                              _P, _SZ, ctypes.POINTER(_P)]),
    "df11_cuda_model_free": (None, [_P]),
    "df11_cuda_tensor_elems": (_U64, [_P, _SZ]),
    "df11_cuda_decode": (_R, [_P, _SZ, _P, _P]),
    "df11_cuda_decode_range": (_R, [_P, _SZ, _U64, _U64, _P, _P]),
    "df11_cuda_check": (_R, [_P, _P]),
    "df11_cuda_available": (_R, []),
}


def _declare(lib, table):
    for name, (restype, argtypes) in table.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


lib, path = _open("df11")
_declare(lib, _SIGNATURES)

_cuda = None


def cuda_lib():
    """libdf11_cuda, loaded on first use (OSError if it is not there)."""
    global _cuda
    if _cuda is None:
        cl, _ = _open("df11_cuda")
        _declare(cl, _CUDA_SIGNATURES)
        _cuda = cl
    return _cuda
