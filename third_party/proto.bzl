"""loom_cc_proto_library: C++ code from .proto files with the system protoc.

Bazel's native proto rules would download protobuf; Debian's protoc and
libprotobuf (same version, 3.21) are used instead. Protos import each other by
workspace-relative path.
"""

def loom_cc_proto_library(name, srcs, deps = [], **kwargs):
    """A cc_library holding the generated code of `srcs` (.proto files).

    Args:
      name: target name.
      srcs: .proto files in this package.
      deps: other loom_cc_proto_library targets whose protos these import.
      **kwargs: forwarded to cc_library.
    """
    stems = [s[:-len(".proto")] for s in srcs]
    outs = [s + ".pb.h" for s in stems] + [s + ".pb.cc" for s in stems]
    native.genrule(
        name = name + "_protoc",
        srcs = srcs + [d + "_srcs" for d in deps],
        outs = outs,
        cmd = "protoc --cpp_out=$(GENDIR) -I. " + " ".join(
            ["$(location %s)" % s for s in srcs],
        ),
        message = "protoc " + ", ".join(srcs),
    )
    native.filegroup(name = name + "_srcs", srcs = srcs + [d + "_srcs" for d in deps])
    native.cc_library(
        name = name,
        srcs = [s + ".pb.cc" for s in stems],
        hdrs = [s + ".pb.h" for s in stems],
        deps = deps + ["//third_party:protobuf"],
        **kwargs
    )
