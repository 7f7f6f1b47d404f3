// The output arrays of the kernels' calls (y, the cache, the gradients): large ones come from
// a pool of blocks that earlier outputs gave back when they were freed (array_pool.cpp).
#pragma once

#include <pybind11/pybind11.h>

#include <initializer_list>

namespace rnnkit {

// A new C-contiguous, writable, uninitialised array of this dtype object and shape (the
// dimensions >= 0). Its data is a pooled block when it has kPoolMinBytes or more.
pybind11::object pooled_empty(PyObject* descr, const Py_intptr_t* shape, int nd);
inline pybind11::object pooled_empty(PyObject* descr, std::initializer_list<Py_intptr_t> shape) {
  return pooled_empty(descr, shape.begin(), static_cast<int>(shape.size()));
}

// _core.empty(shape, dtype), _core.pool_info() and _core.set_pool_limit(limit_bytes).
void bind_pool(pybind11::module_& m);

}  // namespace rnnkit
