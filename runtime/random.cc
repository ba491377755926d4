#include "runtime/random.h"

namespace loom {

Generator& DefaultGenerator() {
  static Generator* g = new Generator();
  return *g;
}

}  // namespace loom
