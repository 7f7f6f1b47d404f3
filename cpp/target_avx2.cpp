// The avx2 build of every kernel: this file alone is compiled with the avx2 instruction-set flags
// (see CMakeLists.txt), inside namespace rnnkit::avx2 so no inline function leaks across targets.
#define RNNKIT_NS avx2
#define RNNKIT_TARGET_AVX2 1
#define RNNKIT_TARGET_NAME "avx2"
#define RNNKIT_TABLE_FN table_avx2
#include "target_impl.h"
