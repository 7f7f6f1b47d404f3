// The thread pool: one process-wide set of workers running `parallel_for` over task indices.
// Callers split work by output tiles, so which thread runs a task never changes a result:
// every output element is computed by exactly one task in a fixed order (bitwise determinism
// for any thread count). Plain function pointers cross this boundary so per-ISA code needs no
// STL types.
#pragma once

#include "common.h"

namespace rnnkit {

using TaskFn = void (*)(void* ctx, i64 task, int tid);

// Runs fn(ctx, task, tid) for task in [0, n_tasks) on at most n_threads threads (the caller is
// thread 0); tid < n_threads identifies the thread, for its private scratch.
void parallel_for(i64 n_tasks, int n_threads, TaskFn fn, void* ctx);

// Like parallel_for, but each thread first runs the tasks it owns, the same ones every call:
// thread s of n (the caller is 0, pool workers keep their number) owns tasks
// [n_tasks*s/n, n_tasks*(s+1)/n), then it takes whatever is left (a late or descheduled thread's
// tasks are run by the others). A recurrence calls the same split every step, so each core
// keeps its own part of the weights in its own L2. n_tasks > 64 falls back to parallel_for.
void parallel_for_owned(i64 n_tasks, int n_threads, TaskFn fn, void* ctx);

int get_num_threads();
void set_num_threads(int n);  // n >= 1; validated by the caller
int default_num_threads();     // RNNKIT_NUM_THREADS, else the cores this process may use

}  // namespace rnnkit
