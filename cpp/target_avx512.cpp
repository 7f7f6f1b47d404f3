// The avx512 build of every kernel: this file alone is compiled with the avx512 instruction-set
// flags (see CMakeLists.txt), inside namespace rnnkit::avx512 so no inline function leaks across
// targets.
#define RNNKIT_NS avx512
#define RNNKIT_TARGET_AVX512 1
#define RNNKIT_TARGET_NAME "avx512"
#define RNNKIT_TABLE_FN table_avx512
#include "target_impl.h"
