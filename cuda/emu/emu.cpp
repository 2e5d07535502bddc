// emu.cpp: the launcher of emu.h.
#include "emu.h"

thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
EmuBlock* emu_block;

void emu_launch(const std::function<void()>& body, dim3 grid, dim3 block) {
	gridDim = grid;
	blockDim = block;
	const unsigned n = block.x * block.y * block.z;
	if (n % 32 != 0) abort(); // kernels.cu launches whole warps only
	for (unsigned bz = 0; bz < grid.z; bz++)
		for (unsigned by = 0; by < grid.y; by++)
			for (unsigned bx = 0; bx < grid.x; bx++) {
				std::barrier<> bar(n);
				EmuBlock eb;
				eb.block = &bar;
				eb.exchange.resize(n);
				for (unsigned w = 0; w < n / 32; w++) eb.warps.push_back(std::make_unique<std::barrier<>>(32));
				emu_block = &eb;
				std::vector<std::thread> threads;
				for (unsigned z = 0; z < block.z; z++)
					for (unsigned y = 0; y < block.y; y++)
						for (unsigned x = 0; x < block.x; x++)
							threads.emplace_back([&body, x, y, z, bx, by, bz] {
								threadIdx = {x, y, z};
								blockIdx = {bx, by, bz};
								body();
							});
				for (auto& t : threads) t.join();
			}
}
