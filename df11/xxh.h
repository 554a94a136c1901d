/* Internal: XXH3 through libxxhash's run-time dispatching entry points
 * (AVX2 / AVX-512 where the CPU has them) when the installed library has
 * them (DF11_XXH_DISPATCH, found by df11/CMakeLists.txt); the same hashes
 * either way. */
#ifndef DF11_XXH_H
#define DF11_XXH_H

#include <xxhash.h>
#ifdef DF11_XXH_DISPATCH
#include <xxh_x86dispatch.h>
#endif

#endif
