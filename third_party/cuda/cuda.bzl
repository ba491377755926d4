"""cuda_library: compiles .cu files with nvcc and exposes them as a cc_library.

Target architectures come from `--define=CUDA_ARCHS=80,90` (the .bazelrc sets
the default; pass e.g. `--define=CUDA_ARCHS=90` to build for H100 only). The
device code is compiled once, to PTX for the lowest architecture, which ptxas
turns into SASS for every architecture and which is also embedded so that newer
GPUs can JIT it. That halves nvcc's front-end work for two architectures; it is
right while the kernels use only sm_80 features (mma.sync, ldmatrix, cp.async).
A kernel that needs sm_90a (wgmma, TMA) needs a virtual architecture of its own.
Headers, include paths and defines of `deps` reach nvcc the way they reach a
cc_library, so .cu files include project headers with workspace-relative paths.

Every compile runs ptxas with -v through nvcc_ptxas_check.sh: the resource
report (registers, stack, spills per kernel) is kept beside each object
(`bazel build <target> --output_groups=ptxas`), and a register spill fails the
build unless the target sets allow_spills = True.
"""

load("@local_cuda//:defs.bzl", "NVCC")

def _cuda_objects_impl(ctx):
    comp = cc_common.merge_cc_infos(
        cc_infos = [d[CcInfo] for d in ctx.attr.deps],
    ).compilation_context
    archs = [a.strip() for a in ctx.var.get("CUDA_ARCHS", "80,90").split(",") if a.strip()]
    if not archs:
        fail("--define=CUDA_ARCHS is empty; give e.g. 80,90")
    outs = []
    reports = []
    for src in ctx.files.srcs:
        stem = src.basename[:-len(src.extension) - 1]
        out = ctx.actions.declare_file("_cuda_objs/%s/%s.pic.o" % (ctx.label.name, stem))
        report = ctx.actions.declare_file("_cuda_objs/%s/%s.ptxas.txt" % (ctx.label.name, stem))
        args = ctx.actions.args()
        args.add("1" if ctx.attr.allow_spills else "0")
        args.add(report.path)
        args.add(NVCC)
        args.add_all(["-c", src.path, "-o", out.path])
        args.add_all(["-std=c++20", "-O3", "-Xcompiler", "-fPIC", "--expt-relaxed-constexpr", "-lineinfo"])
        args.add_all(["-Werror", "all-warnings"])
        low = sorted(archs, key = int)[0]
        codes = ["sm_%s" % a for a in archs] + ["compute_%s" % low]
        args.add("-gencode", "arch=compute_%s,code=[%s]" % (low, ",".join(codes)))
        args.add_all(comp.defines, before_each = "-D")
        args.add_all(comp.local_defines, before_each = "-D")
        args.add_all(comp.includes, before_each = "-I")
        args.add_all(comp.quote_includes, before_each = "-I")
        args.add_all(comp.system_includes, before_each = "-isystem")
        args.add_all(ctx.attr.copts)
        ctx.actions.run(
            executable = ctx.executable._ptxas_check,
            arguments = [args],
            inputs = depset([src] + ctx.files.hdrs, transitive = [comp.headers]),
            outputs = [out, report],
            mnemonic = "NvccCompile",
            progress_message = "nvcc %s (sm_%s)" % (src.short_path, ",".join(archs)),
            use_default_shell_env = True,
        )
        outs.append(out)
        reports.append(report)
    return [DefaultInfo(files = depset(outs)), OutputGroupInfo(ptxas = depset(reports))]

cuda_objects = rule(
    implementation = _cuda_objects_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = [".cu"]),
        "hdrs": attr.label_list(allow_files = True),
        "deps": attr.label_list(providers = [CcInfo]),
        "copts": attr.string_list(),
        "allow_spills": attr.bool(default = False),
        "_ptxas_check": attr.label(
            default = "//third_party/cuda:nvcc_ptxas_check.sh",
            executable = True,
            cfg = "exec",
            allow_single_file = True,
        ),
    },
)

def cuda_library(name, srcs, hdrs = [], deps = [], copts = [], allow_spills = False, **kwargs):
    """A cc_library whose .cu sources are compiled by nvcc.

    Args:
      name: target name.
      srcs: .cu files.
      hdrs: headers the .cu files and dependents include.
      deps: cc_library dependencies (headers for nvcc, libraries for the link).
      copts: extra nvcc flags.
      allow_spills: accept register spills reported by ptxas (default: fail).
      **kwargs: forwarded to cc_library (visibility, alwayslink, ...).
    """
    cuda_objects(
        name = name + "_nvcc",
        srcs = srcs,
        hdrs = hdrs,
        deps = deps + ["@local_cuda//:cuda_headers"],
        copts = copts,
        allow_spills = allow_spills,
    )
    native.cc_library(
        name = name,
        srcs = [":" + name + "_nvcc"],
        hdrs = hdrs,
        deps = deps + ["@local_cuda//:cudart"],
        **kwargs
    )
