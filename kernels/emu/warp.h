// Internal: the warp-level rendezvous behind shuffles, votes, __syncwarp,
// ldmatrix and mma. Each lane deposits its arguments and blocks; the lane
// that completes the mask validates that every lane named by the mask is at
// the same operation with the same mask and width, computes every lane's
// result and wakes them.
#ifndef LOOM_KERNELS_EMU_WARP_H_
#define LOOM_KERNELS_EMU_WARP_H_

#include <cstdint>

#include "kernels/emu/block.h"

namespace loom::emu::internal {

// Returns once the collective has completed for the calling lane. `args`
// stays valid until then (it lives on the caller's stack).
void WarpCollective(WarpOp op, uint32_t mask, int width, void* args, WarpCompute compute,
                    Site site);

}  // namespace loom::emu::internal

#endif  // LOOM_KERNELS_EMU_WARP_H_
