"""One op-harness test per op family: <family>_cases.cc + the shared harness main."""

def op_harness_test(family, size = "small"):
    native.cc_test(
        name = family + "_ops_test",
        size = size,
        srcs = [family + "_cases.cc"],
        deps = [
            "//runtime/testing:op_harness_main",
            "//runtime/testing:op_harness",
        ],
    )
