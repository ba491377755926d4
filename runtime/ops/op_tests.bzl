"""One op-harness test per op family: <family>_cases.cc + the shared harness main.

Each family's cases are a library of their own, so that the per-family test and
//runtime/ops:op_cases (every family, for other backends) share one compile.
"""

def op_harness_test(family, size = "small", copts = []):
    native.cc_library(
        name = family + "_cases",
        testonly = True,
        srcs = [family + "_cases.cc"],
        copts = copts,
        alwayslink = True,
        deps = [
            "//runtime/testing:op_harness",
            "//third_party:gtest",
        ],
    )
    native.cc_test(
        name = family + "_ops_test",
        size = size,
        deps = [
            ":" + family + "_cases",
            "//runtime/testing:op_harness",
            "//runtime/testing:op_harness_main",
        ],
    )
