// The thread pool behind parallel_for.
//
// Workers are started lazily, the first time a call asks for more than one thread, and live
// for the process. A call publishes one job (function, context, task count); the workers and
// the caller take task indices from one atomic counter until none are left. Workers spin
// briefly before sleeping, because a recurrent layer issues two or three small parallel
// regions per time step and a sleep/wake round trip would cost more than the work.
//
// Workers join a job through one atomic ticket (job generation, how many joined, how many may,
// closed). When the caller runs out of tasks it closes the ticket and waits only for the
// workers that joined: a worker the OS has not scheduled (the other core busy with another
// library's threads) never holds the caller up, and a worker that wakes late finds the job
// closed and leaves without touching it. The scratch slot (tid) a worker uses is its place in
// the join order, so it is always < the job's thread count.
//
// parallel_for_owned gives each task an owner (a stable thread number: the caller is 0, worker
// w is w+1 for the life of the pool) and claims tasks in a 64-bit mask, so owners run their
// own tasks first and anyone may take the rest.
//
// Safety rules:
// - A call made while another call owns the pool (two Python threads computing at once), or
//   from inside a task, runs all its tasks on the calling thread: same results, no deadlock.
// - After fork() the child has no workers; an atfork handler drops the parent's pool (leaked
//   on purpose: its mutexes may be held by threads that no longer exist) and the child starts
//   a fresh one on demand.
#include "threads.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace rnnkit {
namespace {

thread_local bool t_inside_task = false;

// RNNKIT_PROFILE (a profiling build only: -DRNNKIT_PROFILE in CXXFLAGS; the
// release build compiles none of it): where each thread's time goes in pooled calls, printed
// to stderr at exit. Per stable thread number: time running tasks, tasks run and stolen; for
// the caller, the time it waits at the end of a call for the workers that joined (the per-step
// barrier); for the workers, the time from a call's start to joining it (wake-up latency).
#ifdef RNNKIT_PROFILE
struct ThreadProfile {
  static constexpr int kMax = 8;
  std::atomic<std::uint64_t> task_ns[kMax] = {}, tasks[kMax] = {}, stolen[kMax] = {},
                             join_ns[kMax] = {}, joins[kMax] = {};
  std::atomic<std::uint64_t> calls{0}, barrier_ns{0}, call_ns{0}, missed_joins{0};
  static std::uint64_t now() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
  }
  ~ThreadProfile() {
    if (calls == 0) return;
    std::fprintf(stderr,
                 "rnnkit threads profile: %llu pooled calls, %.3f ms in them, caller "
                 "waiting at the end %.3f ms; %llu calls no worker joined\n",
                 (unsigned long long)calls.load(), call_ns * 1e-6, barrier_ns * 1e-6,
                 (unsigned long long)missed_joins.load());
    for (int i = 0; i < kMax; ++i)
      if (tasks[i])
        std::fprintf(stderr,
                     "  thread %d: %llu tasks (%llu stolen) %.3f ms; joined %llu calls, "
                     "%.3f ms after their start\n",
                     i, (unsigned long long)tasks[i].load(), (unsigned long long)stolen[i].load(),
                     task_ns[i] * 1e-6, (unsigned long long)joins[i].load(), join_ns[i] * 1e-6);
  }
};
ThreadProfile g_prof;
#define RNNKIT_PROF(...) __VA_ARGS__
#else
#define RNNKIT_PROF(...)
#endif

struct Pool {
  std::mutex owner;  // held by the one caller whose job runs on the pool

  std::mutex m;
  std::condition_variable wake;
  std::vector<std::thread> workers;
  std::atomic<std::uint64_t> generation{0};
  bool stop = false;

  // The current job (valid while a caller owns the pool and until every joined worker is done).
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  i64 n_tasks = 0;
  int job_threads = 0;
  bool owned = false;                    // parallel_for_owned: claim through `claimed`
  std::atomic<std::uint64_t> claimed{0};  // bit i: task i taken (owned jobs, n_tasks <= 64)
  std::atomic<i64> next{0};
  std::atomic<int> finished{0};
  // ticket: bits 32..63 generation, bit 31 closed, bits 16..30 joiners allowed, 0..15 joined
  std::atomic<std::uint64_t> ticket{0};
  RNNKIT_PROF(std::atomic<std::uint64_t> call_start{0};)
  static constexpr std::uint64_t kClosed = 1ull << 31;

  bool claim(i64 task) {
    const std::uint64_t bit = std::uint64_t(1) << task;
    return !(claimed.fetch_or(bit, std::memory_order_relaxed) & bit);
  }

  // tid: place in the join order (the scratch slot); self: the stable thread number.
  void run_tasks(int tid, int self) {
    t_inside_task = true;
    RNNKIT_PROF(const std::uint64_t t0 = ThreadProfile::now();
                std::uint64_t n_run = 0, n_stolen = 0;
                const int me = self < ThreadProfile::kMax ? self : ThreadProfile::kMax - 1);
    if (owned) {
      const int s = self < job_threads ? self : tid;
      const i64 lo = n_tasks * s / job_threads, hi = n_tasks * (s + 1) / job_threads;
      for (i64 t = lo; t < hi; ++t)
        if (claim(t)) {
          fn(ctx, t, tid);
          RNNKIT_PROF(++n_run);
        }
      // Then the others' leftovers, last first: an owner walks its range upwards, so a thief
      // meets it in the middle instead of taking the tasks it is about to reach.
      for (i64 t = n_tasks - 1; t >= 0; --t)
        if ((t < lo || t >= hi) && claim(t)) {
          fn(ctx, t, tid);
          RNNKIT_PROF(++n_run; ++n_stolen);
        }
    } else {
      for (;;) {
        i64 task = next.fetch_add(1, std::memory_order_relaxed);
        if (task >= n_tasks) break;
        fn(ctx, task, tid);
        RNNKIT_PROF(++n_run);
      }
    }
    RNNKIT_PROF(g_prof.task_ns[me] += ThreadProfile::now() - t0; g_prof.tasks[me] += n_run;
                g_prof.stolen[me] += n_stolen);
    t_inside_task = false;
  }

  // Joins the job of generation g if it is open and has room; returns the tid or 0.
  int try_join(std::uint64_t g) {
    std::uint64_t t = ticket.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t joined = t & 0xFFFF, allowed = (t >> 16) & 0x7FFF;
      if ((t >> 32) != (g & 0xFFFFFFFFull) || (t & kClosed) || joined >= allowed) return 0;
      if (ticket.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
        return static_cast<int>(joined) + 1;
    }
  }

  void worker_main(std::uint64_t seen, int self) {
    for (;;) {
      // Spin a little: the next parallel region usually follows within microseconds.
      std::uint64_t g = generation.load(std::memory_order_acquire);
      for (int spin = 0; g == seen && spin < 20000; ++spin) {
        if ((spin & 63) == 63) sched_yield();
        g = generation.load(std::memory_order_acquire);
      }
      if (g == seen) {
        std::unique_lock<std::mutex> lock(m);
        wake.wait(lock, [&] { return stop || generation.load(std::memory_order_acquire) != seen; });
        if (stop) return;
        g = generation.load(std::memory_order_acquire);
      }
      seen = g;
      if (int tid = try_join(g)) {
        RNNKIT_PROF(const int me = self < ThreadProfile::kMax ? self : ThreadProfile::kMax - 1;
                    g_prof.join_ns[me] += ThreadProfile::now() - call_start.load();
                    ++g_prof.joins[me]);
        run_tasks(tid, self);
        finished.fetch_add(1, std::memory_order_acq_rel);
      }
    }
  }

  void ensure_workers(int n_threads_wanted) {
    while (static_cast<int>(workers.size()) + 1 < n_threads_wanted) {
      std::uint64_t now = generation.load(std::memory_order_acquire);  // it joins the next job
      const int self = static_cast<int>(workers.size()) + 1;
      workers.emplace_back([this, now, self] { worker_main(now, self); });
    }
  }
};

Pool* g_pool = nullptr;
std::mutex g_pool_create;
std::atomic<int> g_num_threads{0};  // 0 = not yet initialised

void forget_pool_in_child() {
  // The child has only the forking thread; the old pool's workers are gone.
  new (&g_pool_create) std::mutex();
  g_pool = nullptr;
}

Pool* pool() {
  std::lock_guard<std::mutex> lock(g_pool_create);
  if (!g_pool) {
    static bool registered = false;
    if (!registered) {
      pthread_atfork(nullptr, nullptr, forget_pool_in_child);
      registered = true;
    }
    g_pool = new Pool();  // never deleted: workers may outlive static destruction otherwise
  }
  return g_pool;
}

void run_inline(i64 n_tasks, TaskFn fn, void* ctx) {
  for (i64 t = 0; t < n_tasks; ++t) fn(ctx, t, 0);
}

}  // namespace

int default_num_threads() {
  if (const char* env = std::getenv("RNNKIT_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 1024) return static_cast<int>(v);
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

int get_num_threads() {
  int n = g_num_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    n = default_num_threads();
    g_num_threads.store(n, std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int n) { g_num_threads.store(n < 1 ? 1 : n, std::memory_order_relaxed); }

namespace {

void run_on_pool(i64 n_tasks, int n_threads, TaskFn fn, void* ctx, bool owned) {
  if (n_tasks <= 0) return;
  if (n_threads > n_tasks) n_threads = static_cast<int>(n_tasks);
  if (n_threads <= 1 || t_inside_task) {
    run_inline(n_tasks, fn, ctx);
    return;
  }
  Pool* p = pool();
  std::unique_lock<std::mutex> own(p->owner, std::try_to_lock);
  if (!own.owns_lock()) {  // another Python thread is using the pool: compute here instead
    run_inline(n_tasks, fn, ctx);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(p->m);
    p->ensure_workers(n_threads);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    p->job_threads = n_threads;
    p->owned = owned;
    RNNKIT_PROF(p->call_start.store(ThreadProfile::now()));
    p->claimed.store(0, std::memory_order_relaxed);
    p->next.store(0, std::memory_order_relaxed);
    p->finished.store(0, std::memory_order_relaxed);
    const std::uint64_t g = p->generation.load(std::memory_order_relaxed) + 1;
    p->ticket.store(((g & 0xFFFFFFFFull) << 32) | (static_cast<std::uint64_t>(n_threads - 1) << 16),
                    std::memory_order_release);
    p->generation.store(g, std::memory_order_release);
  }
  p->wake.notify_all();
  p->run_tasks(0, 0);
  // No tasks left: close the job and wait for the workers that joined it, and only for them.
  RNNKIT_PROF(const std::uint64_t t_done = ThreadProfile::now());
  const std::uint64_t t = p->ticket.fetch_or(Pool::kClosed, std::memory_order_acq_rel);
  const int joined = static_cast<int>(t & 0xFFFF);
  for (int spin = 0; p->finished.load(std::memory_order_acquire) < joined; ++spin) {
    if ((spin & 63) == 63) sched_yield();
  }
  RNNKIT_PROF(const std::uint64_t t_end = ThreadProfile::now(); ++g_prof.calls;
              g_prof.barrier_ns += t_end - t_done; g_prof.call_ns += t_end - p->call_start.load();
              if (joined == 0)++ g_prof.missed_joins);
}

}  // namespace

void parallel_for(i64 n_tasks, int n_threads, TaskFn fn, void* ctx) {
  run_on_pool(n_tasks, n_threads, fn, ctx, false);
}

void parallel_for_owned(i64 n_tasks, int n_threads, TaskFn fn, void* ctx) {
  run_on_pool(n_tasks, n_threads, fn, ctx, n_tasks <= 64);
}

}  // namespace rnnkit
