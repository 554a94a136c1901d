// A C++ program that includes both df11 headers: it encodes a tensor on the
// CPU and, where libdf11_cuda is installed, says whether a GPU is usable.
// Exit 0 whether or not there is a GPU.
#include <df11.h>
#ifdef HAVE_DF11_CUDA
#include <df11_cuda.h>
#endif

#include <cstdint>
#include <cstdio>
#include <vector>

int main()
{
	std::vector<uint16_t> w(4096);
	for (size_t i = 0; i < w.size(); i++)
		w[i] = static_cast<uint16_t>(0x3c00u + (i * 37u) % 512u);
	std::vector<uint8_t> enc(df11_encode_bound(w.size()));
	size_t size = 0;
	if (df11_encode(w.data(), w.size(), nullptr, enc.data(), enc.size(),
			&size) != DF11_OK) {
		std::fprintf(stderr, "gpu_probe: %s\n", df11_last_error());
		return 1;
	}
	std::printf("libdf11 %s (version number %u): %zu words -> %zu bytes\n",
		    df11_version_string(), df11_version_number(), w.size(), size);
#ifdef HAVE_DF11_CUDA
	if (df11_cuda_available() == DF11_OK)
		std::printf("libdf11_cuda: a GPU is usable\n");
	else
		std::printf("libdf11_cuda: %s\n", df11_last_error());
#else
	std::printf("libdf11_cuda: not installed\n");
#endif
	return 0;
}
