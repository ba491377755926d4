// Emulation of the sm_80 warp-level matrix instructions and asynchronous
// copies that kernels reach through kernels/cuda/device/ptx.h. Layouts follow
// the PTX ISA ("Matrix Fragments for mma.m16n8k16", "ldmatrix", "cp.async");
// /shared/specs/cuda-emulation.md section 4 has the formulas.
#ifndef LOOM_KERNELS_EMU_PTX_H_
#define LOOM_KERNELS_EMU_PTX_H_

#include <cstdint>
#include <source_location>

namespace loom::emu::device {

enum class MmaType : uint8_t { kBF16, kF16 };

// mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32:
// d = a * b + c over the warp's fragments (all 32 lanes). Products and sums
// are computed in double and rounded once to f32 (hardware order and
// rounding are unspecified; compare with a tolerance).
void Mma16816(MmaType type, float* d, const uint32_t* a, const uint32_t* b, const float* c,
              std::source_location loc);

// ldmatrix.sync.aligned.m8n8.x{num}{.trans}.shared.b16 (all 32 lanes):
// lane 8m + r supplies the 16-byte-aligned shared-memory address of row r of
// matrix m; register m of each lane receives its part of matrix m.
void LdMatrix(int num, bool trans, uint32_t* regs, const void* row, std::source_location loc);

// cp.async.{ca,cg}.shared.global [dst], [src], cp_bytes, src_bytes: copies
// src_bytes (<= cp_bytes) and zero-fills the rest. The destination is poisoned
// (0xFF) at issue and written when a wait retires the copy's group.
void CpAsync(void* dst, const void* src, int cp_bytes, int src_bytes, std::source_location loc);
void CpAsyncCommit();
// cp.async.wait_group n: retires this thread's groups until at most n remain.
void CpAsyncWait(int n, std::source_location loc);

}  // namespace loom::emu::device

#endif  // LOOM_KERNELS_EMU_PTX_H_
