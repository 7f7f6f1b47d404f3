// A pool for the large output arrays of the kernels' calls.
//
// A forward returns its cache (an LSTM's h, c and gates: 6*T*B*H values, 80 MB at T=100, B=64,
// H=512 float32) in arrays that a training loop frees a call later. glibc's malloc serves
// blocks above its mmap threshold (at most 32 MiB) with fresh pages from the OS every time,
// which the kernel zeroes on first touch: the 52 MB gates of that LSTM faulted on every call,
// ~540 faults and up to 100 ms of system time per forward+backward on two threads. Here an
// array of kPoolMinBytes or more gets a block from the pool; the array's base is a capsule that
// gives the block back when the array (and every view of it) is gone. Given-back blocks are
// kept for the next array of the same rounded size, newest first, up to a limit of bytes kept
// (the oldest are freed first); a loop that makes the same shapes every step then reuses its
// blocks and stops faulting after its first step. Smaller arrays stay with NumPy.
//
// The blocks in use are reported to tracemalloc in NumPy's domain, as any array's data.
#include "array_pool.h"

#include <pybind11/numpy.h>

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <vector>

namespace py = pybind11;

namespace rnnkit {
namespace {

constexpr size_t kPoolMinBytes = size_t(1) << 20;
constexpr size_t kGranule = size_t(64) << 10;       // block sizes are multiples of this
constexpr size_t kDefaultLimit = size_t(256) << 20;  // as the kernels' workspace (bindings.cpp)
constexpr unsigned kNumpyTraceDomain = 389047;       // NumPy's tracemalloc domain
const char* const kCapsuleName = "rnnkit._core.pool_block";

struct Block {
  void* p;
  size_t bytes;
};

struct Pool {
  std::mutex m;
  std::vector<Block> kept;  // given back, oldest first
  size_t kept_bytes = 0;
  size_t limit = kDefaultLimit;
  unsigned long long reused = 0, allocated = 0;
};

// Never destroyed: an array may be freed at interpreter exit, after static destructors ran.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

// tracemalloc's C API, looked up at run time: CPython 3.11's tracemalloc.h declares it without
// extern "C", so a direct call from C++ links against a mangled name that does not exist.
struct TraceApi {
  int (*track)(unsigned, uintptr_t, size_t) = nullptr;
  int (*untrack)(unsigned, uintptr_t) = nullptr;
  TraceApi() {
    track = reinterpret_cast<decltype(track)>(dlsym(RTLD_DEFAULT, "PyTraceMalloc_Track"));
    untrack = reinterpret_cast<decltype(untrack)>(dlsym(RTLD_DEFAULT, "PyTraceMalloc_Untrack"));
  }
};
const TraceApi& trace_api() {
  static const TraceApi api;
  return api;
}

// 64-byte aligned. Aligning the large ones to 2 MiB for huge pages (madvise, as NumPy does)
// measured no faster once the blocks are reused.
void* new_block(size_t bytes) {
  void* p = std::aligned_alloc(64, bytes);  // bytes is a multiple of kGranule, so of 64
  if (!p) throw std::bad_alloc();
  return p;
}

// The blocks beyond `limit` bytes, oldest first, are taken out of the pool (freed by the
// caller outside the lock).
void trim(Pool& q, size_t limit, std::vector<void*>& out) {
  size_t i = 0;
  while (i < q.kept.size() && q.kept_bytes > limit) {
    q.kept_bytes -= q.kept[i].bytes;
    out.push_back(q.kept[i++].p);
  }
  q.kept.erase(q.kept.begin(), q.kept.begin() + static_cast<std::ptrdiff_t>(i));
}

void* take(size_t bytes) {
  Pool& q = pool();
  {
    std::lock_guard<std::mutex> lock(q.m);
    for (size_t i = q.kept.size(); i-- > 0;)
      if (q.kept[i].bytes == bytes) {
        void* p = q.kept[i].p;
        q.kept.erase(q.kept.begin() + static_cast<std::ptrdiff_t>(i));
        q.kept_bytes -= bytes;
        ++q.reused;
        return p;
      }
    ++q.allocated;
  }
  return new_block(bytes);
}

void give_back(void* p, size_t bytes) {
  Pool& q = pool();
  std::vector<void*> gone;
  {
    std::lock_guard<std::mutex> lock(q.m);
    if (bytes > q.limit) {
      gone.push_back(p);
    } else {
      q.kept.push_back({p, bytes});
      q.kept_bytes += bytes;
      trim(q, q.limit, gone);
    }
  }
  for (void* g : gone) std::free(g);
}

void release_capsule(PyObject* cap) {
  void* p = PyCapsule_GetPointer(cap, kCapsuleName);
  const size_t bytes = reinterpret_cast<size_t>(PyCapsule_GetContext(cap));
  if (trace_api().untrack) trace_api().untrack(kNumpyTraceDomain, reinterpret_cast<uintptr_t>(p));
  give_back(p, bytes);
}

}  // namespace

py::object pooled_empty(PyObject* descr, const Py_intptr_t* shape, int nd) {
  const auto& api = py::detail::npy_api::get();
  const size_t item = static_cast<size_t>(py::reinterpret_borrow<py::dtype>(descr).itemsize());
  size_t n = item;
  bool big = true;  // false once the size is known to be under kPoolMinBytes, or overflows
  for (int i = 0; i < nd; ++i) {
    const size_t d = static_cast<size_t>(shape[i]);
    if (d != 0 && n > (size_t(1) << 62) / d) big = false;  // NumPy refuses it below
    n *= d;
  }
  big = big && n >= kPoolMinBytes;
  if (!big) {
    Py_INCREF(descr);  // PyArray_NewFromDescr steals it
    PyObject* a = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr, nd,
                                            const_cast<Py_intptr_t*>(shape), nullptr, nullptr, 0,
                                            nullptr);
    if (!a) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(a);
  }
  const size_t bytes = (n + kGranule - 1) / kGranule * kGranule;
  void* p = take(bytes);
  PyObject* cap = PyCapsule_New(p, kCapsuleName, &release_capsule);
  if (!cap || PyCapsule_SetContext(cap, reinterpret_cast<void*>(bytes)) != 0) {
    Py_XDECREF(cap);
    give_back(p, bytes);
    throw py::error_already_set();
  }
  if (trace_api().track)
    trace_api().track(kNumpyTraceDomain, reinterpret_cast<uintptr_t>(p), bytes);
  auto owner = py::reinterpret_steal<py::object>(cap);  // frees the block on any error below
  Py_INCREF(descr);
  constexpr int kFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ |
                         py::detail::npy_api::NPY_ARRAY_ALIGNED_ |
                         py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  PyObject* a = api.PyArray_NewFromDescr_(
      api.PyArray_Type_, descr, nd, const_cast<Py_intptr_t*>(shape), nullptr, p, kFlags, nullptr);
  if (!a) throw py::error_already_set();
  auto array = py::reinterpret_steal<py::object>(a);
  if (api.PyArray_SetBaseObject_(a, owner.release().ptr()) != 0) throw py::error_already_set();
  return array;
}

void bind_pool(py::module_& m) {
  m.def(
      "empty",
      [](const py::tuple& shape, const py::dtype& dtype) {
        std::vector<Py_intptr_t> dims;
        for (const py::handle& d : shape) {
          const long long v = d.cast<long long>();
          if (v < 0)
            throw py::value_error("shape: expected dimensions >= 0, got " +
                                  std::string(py::str(shape)));
          dims.push_back(static_cast<Py_intptr_t>(v));
        }
        return pooled_empty(dtype.ptr(), dims.data(), static_cast<int>(dims.size()));
      },
      py::arg("shape"), py::arg("dtype"),
      "An uninitialised C-contiguous array, its data from the output pool when it is large.");
  m.def(
      "pool_info",
      [] {
        Pool& q = pool();
        std::lock_guard<std::mutex> lock(q.m);
        py::dict d;
        d["kept_bytes"] = q.kept_bytes;
        d["kept_blocks"] = q.kept.size();
        d["limit_bytes"] = q.limit;
        d["min_bytes"] = kPoolMinBytes;
        d["reused"] = q.reused;
        d["allocated"] = q.allocated;
        return d;
      },
      "The output pool: bytes and blocks kept, its limit, blocks reused and allocated.");
  m.def(
      "set_pool_limit",
      [](unsigned long long limit) {
        Pool& q = pool();
        std::vector<void*> gone;
        {
          std::lock_guard<std::mutex> lock(q.m);
          q.limit = static_cast<size_t>(limit);
          trim(q, q.limit, gone);
        }
        for (void* g : gone) std::free(g);
      },
      py::arg("limit_bytes"),
      "Sets the bytes the output pool may keep; frees the oldest blocks beyond it now.");
}

}  // namespace rnnkit
