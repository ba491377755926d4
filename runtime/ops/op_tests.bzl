"""One op-harness test per op family: <family>_cases.cc + the shared harness main."""

def op_harness_test(family, size = "small", copts = []):
    native.cc_test(
        name = family + "_ops_test",
        size = size,
        srcs = [family + "_cases.cc"],
        copts = copts,
        deps = [
            "//runtime/testing:op_harness_main",
            "//runtime/testing:op_harness",
        ],
    )
