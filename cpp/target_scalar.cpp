// The scalar build of every kernel: this file alone is compiled with the scalar instruction-set
// flags (see CMakeLists.txt), inside namespace rnnkit::scalar so no inline function leaks across
// targets.
#define RNNKIT_NS scalar
#define RNNKIT_TARGET_SCALAR 1
#define RNNKIT_TARGET_NAME "scalar"
#define RNNKIT_TABLE_FN table_scalar
#include "target_impl.h"
