// All differentiable ops, for code that uses many of them (models, tests).
#ifndef LOOM_RUNTIME_OPS_OPS_H_
#define LOOM_RUNTIME_OPS_OPS_H_

#include "runtime/autograd/checkpoint.h"   // IWYU pragma: export
#include "runtime/autograd/engine.h"       // IWYU pragma: export
#include "runtime/autograd/function.h"     // IWYU pragma: export
#include "runtime/autograd/grad_mode.h"    // IWYU pragma: export
#include "runtime/autograd/hooks.h"        // IWYU pragma: export
#include "runtime/ops/activation.h"        // IWYU pragma: export
#include "runtime/ops/attention.h"         // IWYU pragma: export
#include "runtime/ops/elementwise.h"       // IWYU pragma: export
#include "runtime/ops/embedding.h"         // IWYU pragma: export
#include "runtime/ops/loss.h"              // IWYU pragma: export
#include "runtime/ops/matmul.h"            // IWYU pragma: export
#include "runtime/ops/norm.h"              // IWYU pragma: export
#include "runtime/ops/random.h"            // IWYU pragma: export
#include "runtime/ops/reduce.h"            // IWYU pragma: export
#include "runtime/ops/rope.h"              // IWYU pragma: export
#include "runtime/ops/shape.h"             // IWYU pragma: export
#include "runtime/ops/softmax.h"           // IWYU pragma: export
#include "runtime/tensor.h"                // IWYU pragma: export

#endif  // LOOM_RUNTIME_OPS_OPS_H_
