/* Internal: a failed CUDA runtime call as a df11 result, with CUDA's own
 * text in df11_last_error(). For libdf11_cuda and the CUDA code above it. */
#ifndef DF11_CUDA_FAIL_H
#define DF11_CUDA_FAIL_H

#include <cuda_runtime_api.h>

#include "common/error.h"

static inline df11_result df11_cuda_fail(cudaError_t e, const char *what)
{
	return df11_fail(DF11_CUDA, "%s: %s (%s)", what, cudaGetErrorString(e),
			 cudaGetErrorName(e));
}

#endif
