"""cuda_kernel_library: one set of kernel sources, two builds.

    cuda_kernel_library(name = "gemm", srcs = ["gemm.cu"], hdrs = ["gemm.h"], deps = [...])

creates
  :gemm      the kernels compiled by nvcc for the GPU (cuda_library: every
             architecture of --define=CUDA_ARCHS, ptxas report, spills fail);
  :gemm_emu  the same .cu files compiled by g++ against the CPU emulator
             (//kernels/emu) with LOOM_CUDA_EMULATION defined, which puts the
             launchers in namespace loom::cuda_emu. Tests link this one.
"""

load("//third_party/cuda:cuda.bzl", "cuda_library")

# The emulated sources are generated files, outside the --per_file_copt
# pattern of .bazelrc, so they get our warning flags here.
_EMU_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
    "-Wno-unknown-pragmas",  # `#pragma unroll` is for nvcc
]

def cuda_kernel_library(name, srcs, hdrs = [], deps = [], allow_spills = False, **kwargs):
    """Kernel sources compiled for the GPU (`name`) and for the emulator (`name`_emu).

    Args:
      name: target name of the GPU build; the emulated build is name + "_emu".
      srcs: .cu files (each includes kernels/cuda/device/compat.h).
      hdrs: launcher headers.
      deps: cc_library dependencies of both builds.
      allow_spills: accept register spills reported by ptxas.
      **kwargs: forwarded to both libraries (visibility, ...).
    """
    cuda_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        deps = deps + ["//kernels/cuda/device"],
        allow_spills = allow_spills,
        **kwargs
    )
    emu_srcs = []
    for src in srcs:
        stem = src[:-len(".cu")]
        out = "_emu_srcs/%s/%s.cc" % (name, stem)
        path = (native.package_name() + "/" + src) if native.package_name() else src

        # #line keeps diagnostics and std::source_location on the original .cu.
        native.genrule(
            name = "%s_%s_emu_src" % (name, stem.replace("/", "_")),
            srcs = [src],
            outs = [out],
            cmd = "(echo '#line 1 \"%s\"'; cat $<) > $@" % path,
        )
        emu_srcs.append(out)
    native.cc_library(
        name = name + "_emu",
        srcs = emu_srcs,
        hdrs = hdrs,
        copts = _EMU_COPTS,
        defines = ["LOOM_CUDA_EMULATION"],
        deps = deps + [
            "//kernels/cuda/device",
            "//kernels/emu",
        ],
        **kwargs
    )
