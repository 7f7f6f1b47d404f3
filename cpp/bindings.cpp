// The Python boundary of the kernels: `rnnkit._core` (streams: stream.cpp; the output pool:
// array_pool.cpp).
//
// The public API validates arguments in Python (rnnkit/_checks.py) so both backends raise the
// same errors; this file checks again everything a kernel trusts (dtype, shape, contiguity,
// writability) so that even a direct call of `_core` cannot crash the interpreter. Outputs are
// NumPy arrays allocated by the caller, large ones from the output pool. The workspace is
// allocated here, then the GIL is released for the kernel call.
#include <pybind11/native_enum.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstring>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "array_pool.h"
#include "cpu_features.h"
#include "dispatch.h"
#include "kernel_api.h"
#include "threads.h"

namespace py = pybind11;
using rnnkit::i64;

namespace rnnkit {
void bind_stream(py::module_& m);  // stream.cpp: rnnkit._core.Stream
}

namespace {

std::string shape_str(const std::vector<i64>& s) {
  std::ostringstream o;
  o << "(";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  if (s.size() == 1) o << ",";
  o << ")";
  return o.str();
}

// dtype equality, not identity: arrays rebuilt by pickle or copy.deepcopy carry an equal but
// distinct dtype object. Byte-swapped dtypes compare unequal, so they are still rejected.
bool same_dtype(const py::dtype& a, const py::dtype& b) {
  if (a.is(b)) return true;
  const int eq = PyObject_RichCompareBool(a.ptr(), b.ptr(), Py_EQ);
  if (eq < 0) throw py::error_already_set();
  return eq == 1;
}

// An expected shape of up to 4 dimensions, held without a heap allocation (a call checks a
// dozen arrays: their shapes cost no malloc unless one is wrong).
struct Shape {
  i64 v[4] = {0, 0, 0, 0};
  size_t n = 0;
  Shape(std::initializer_list<i64> dims) {
    for (i64 x : dims) v[n++] = x;
  }
  explicit Shape(const std::vector<i64>& dims) {
    for (i64 x : dims) v[n++] = x;
  }
  bool matches(const py::array& a) const {
    if (static_cast<size_t>(a.ndim()) != n) return false;
    for (size_t i = 0; i < n; ++i)
      if (a.shape(static_cast<py::ssize_t>(i)) != v[i]) return false;
    return true;
  }
  std::vector<i64> vec() const { return std::vector<i64>(v, v + n); }
};

// Checks one array argument and returns its data pointer (null for an allowed None).
template <class T>
T* arg_ptr(const py::object& obj, const char* name, const Shape& shape, bool writable,
           bool optional = false) {
  if (obj.is_none()) {
    if (optional) return nullptr;
    throw py::value_error(std::string(name) + ": expected an array, got None");
  }
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!same_dtype(a.dtype(), py::dtype::of<T>()))
    throw py::type_error(std::string(name) + ": expected dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(a.dtype())));
  if (!shape.matches(a))
    throw py::value_error(std::string(name) + ": expected shape " + shape_str(shape.vec()) +
                          ", got " + shape_str(std::vector<i64>(a.shape(), a.shape() + a.ndim())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
  if (writable && !a.writeable())
    throw py::value_error(std::string(name) + ": expected a writable array");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

// resets: a uint8 view [T, B] of the bool array (nonzero: the state is zero before the step),
// or null when absent.
const std::uint8_t* resets_ptr(const py::object& obj, i64 T, i64 B) {
  return arg_ptr<std::uint8_t>(obj, "resets", {T, B}, false, true);
}

const i64* lengths_ptr(const py::object& obj, i64 B, i64 T) {
  if (obj.is_none()) return nullptr;
  const i64* p = arg_ptr<i64>(obj, "lengths", {B}, false);
  for (i64 b = 0; b < B; ++b)
    if (p[b] < 0 || p[b] > T)
      throw py::value_error("lengths: expected values in [0, " + std::to_string(T) + "], got " +
                            std::to_string(p[b]) + " at index " + std::to_string(b));
  return p;
}

// The layer-norm parameters of a call (ln_ih, ln_hh [2, G*H]; ln_c [2, H], cells with a
// cell state), each optional; the MGU has none.
template <class T>
struct LnArgs {
  const T *ih = nullptr, *hh = nullptr, *c = nullptr;
  bool any() const { return ih || hh || c; }
};
template <class T, class Kw>
LnArgs<T> ln_args(const Kw& v, const rnnkit::CellInfo& info, i64 GH, i64 H) {
  LnArgs<T> ln;
  ln.ih = arg_ptr<T>(v.ln_ih, "ln_ih", {2, GH}, false, true);
  ln.hh = arg_ptr<T>(v.ln_hh, "ln_hh", {2, GH}, false, true);
  ln.c = arg_ptr<T>(v.ln_c, "ln_c", {2, H}, false, true);
  if ((ln.ih || ln.hh) && info.id == rnnkit::Cell::kMgu)
    throw py::value_error(std::string(ln.ih ? "ln_ih" : "ln_hh") +
                          ": expected None, the MGU cell has no layer norm");
  if (ln.c && !info.cell_state)
    throw py::value_error(std::string("ln_c: expected None, the ") + info.name +
                          " cell has no cell state");
  return ln;
}
// An array that goes with a layer norm (its cache or gradient): present exactly when `with`.
template <class T>
T* ln_part(const py::object& obj, const char* name, const Shape& shape, bool writable, bool with,
           const char* of) {
  T* p = arg_ptr<T>(obj, name, shape, writable, true);
  if ((p != nullptr) != with)
    throw py::value_error(std::string(name) + ": expected an array exactly when " + of +
                          " is given");
  return p;
}

// The layer norms of a call and their cache into FwdArgs (forward writes the cache) or BwdArgs
// (backward reads it back: its arrays are named cache.X in errors).
template <class T, class Args, class Kw>
LnArgs<T> ln_into(Args& a, const Kw& v, const rnnkit::CellInfo& info, const rnnkit::Dims& d,
                  bool forward) {
  const i64 T_ = d.T, B = d.B, GH = d.G * d.H, H = d.H;
  const LnArgs<T> ln = ln_args<T>(v, info, GH, H);
  a.ln_ih = ln.ih;
  a.ln_hh = ln.hh;
  a.ln_c = ln.c;
  const bool w = forward;
  a.ih_hat = ln_part<T>(v.ih_hat, w ? "ih_hat" : "cache.ih_hat", {T_, B, GH}, w, ln.ih, "ln_ih");
  a.hh_hat = ln_part<T>(v.hh_hat, w ? "hh_hat" : "cache.hh_hat", {T_, B, GH}, w, ln.hh, "ln_hh");
  a.c_hat = ln_part<T>(v.c_hat, w ? "c_hat" : "cache.c_hat", {T_, B, H}, w, ln.c, "ln_c");
  a.ln_rstd = ln_part<T>(v.ln_rstd, w ? "ln_rstd" : "cache.ln_rstd", {T_, B, 4}, w, ln.any(),
                         "a layer norm");
  return ln;
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// The kernels' scratch. Each calling thread keeps its largest workspace (up to kKeepBytes) for
// the next call: a fresh multi-megabyte allocation is new pages from the OS every time, and
// faulting them in cost ~14% of a large LSTM backward (perf: clear_page_erms). Larger requests
// are freed after the call.
constexpr size_t kKeepBytes = size_t(256) << 20;

struct CachedBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  ~CachedBuffer() { std::free(p); }
};
thread_local CachedBuffer t_workspace;

class Workspace {
 public:
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  explicit Workspace(size_t bytes) {
    bytes = rnnkit::round_up(static_cast<rnnkit::i64>(bytes > 64 ? bytes : 64), 64);
    if (bytes <= t_workspace.bytes) {
      p_ = t_workspace.p;
      return;
    }
    void* fresh = std::aligned_alloc(64, bytes);
    if (!fresh) throw std::bad_alloc();
    if (bytes <= kKeepBytes) {
      std::free(t_workspace.p);
      t_workspace.p = fresh;
      t_workspace.bytes = bytes;
    } else {
      owned_.reset(fresh);
    }
    p_ = fresh;
  }
  void* get() const { return p_; }

 private:
  void* p_ = nullptr;
  std::unique_ptr<void, AlignedFree> owned_;
};

template <class T>
Workspace alloc_workspace(i64 n) {
  if (n < 0 || static_cast<unsigned long long>(n) > (1ull << 60) / sizeof(T))
    throw std::bad_alloc();
  return Workspace(static_cast<size_t>(n) * sizeof(T));
}

// The row of kinds.h for a cell (an enum value outside the table is refused).
const rnnkit::CellInfo& cell_info(rnnkit::Cell cell) {
  const rnnkit::CellInfo* info = rnnkit::find_cell(cell);
  if (!info)
    throw py::value_error("cell: expected a value of rnnkit._core.Cell, got " +
                          std::to_string(static_cast<int>(cell)));
  return *info;
}

std::vector<i64> shape_of(const py::object& obj, const char* name, size_t ndim) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (static_cast<size_t>(a.ndim()) != ndim)
    throw py::value_error(std::string(name) + ": expected a " + std::to_string(ndim) +
                          "-D array, got " + std::to_string(a.ndim()) + "-D");
  return std::vector<i64>(a.shape(), a.shape() + a.ndim());
}

// Sizes from x [T,B,I], w_hh [G*H, P] and w_proj [P, H].
rnnkit::Dims dims_of(const rnnkit::CellInfo& cell, const py::object& x, const py::object& w_hh,
                     const py::object& w_proj) {
  const int G = cell.gates;
  auto xs = shape_of(x, "x", 3);
  auto ws = shape_of(w_hh, "w_hh", 2);
  if (ws[0] % G != 0)
    throw py::value_error("w_hh: expected a first dimension divisible by " + std::to_string(G) +
                          ", got " + std::to_string(ws[0]));
  rnnkit::Dims d{xs[0], xs[1], xs[2], ws[0] / G, ws[1], G};
  if (!w_proj.is_none() && !cell.peep_proj)
    throw py::value_error(std::string("w_proj: expected None, the ") + cell.name +
                          " cell has no projection");
  if (w_proj.is_none()) {
    if (d.P != d.H)
      throw py::value_error("w_hh: expected shape " + shape_str({G * d.H, d.H}) + ", got " +
                            shape_str(ws));
  }
  return d;
}

bool is_dtype(const py::object& x, const py::dtype& dt) {
  return py::isinstance<py::array>(x) &&
         same_dtype(py::reinterpret_borrow<py::array>(x).dtype(), dt);
}

template <class T>
struct Tag {
  using type = T;
};

// The one dtype dispatch: f(Tag<float>{}) or f(Tag<double>{}) by the dtype of the array x,
// named `name` in the error otherwise.
template <class F>
auto with_dtype(const py::object& x, const char* name, F&& f) {
  if (is_dtype(x, py::dtype::of<float>())) return f(Tag<float>{});
  if (!is_dtype(x, py::dtype::of<double>())) {
    std::string got = py::isinstance<py::array>(x)
                          ? std::string(py::str(py::reinterpret_borrow<py::array>(x).dtype()))
                          : std::string(py::str(py::type::of(x).attr("__name__")));
    throw py::type_error(std::string(name) + ": expected dtype float32 or float64, got " + got);
  }
  return f(Tag<double>{});
}

// Ctrl-C during a kernel: the driver polls between steps; at most every kPollEvery the poll
// takes the GIL back and runs the signal handlers (PyErr_CheckSignals). An exception they
// raise (KeyboardInterrupt) stops the kernel and is raised once it has returned, so the
// caller never sees its half-written outputs. A step costs a clock read otherwise.
constexpr auto kPollEvery = std::chrono::milliseconds(5);

struct SignalPoll {
  std::chrono::steady_clock::time_point next = std::chrono::steady_clock::now() + kPollEvery;
  PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;  // the pending exception
  bool raised = false;

  static bool poll(void* ctx) {
    SignalPoll& s = *static_cast<SignalPoll*>(ctx);
    if (s.raised) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now < s.next) return false;
    s.next = now + kPollEvery;
    const PyGILState_STATE gil = PyGILState_Ensure();
    if (PyErr_CheckSignals() != 0) {
      PyErr_Fetch(&s.type, &s.value, &s.traceback);
      s.raised = true;
    }
    PyGILState_Release(gil);
    return s.raised;
  }
};

// Sizes the workspace, then runs the kernel without the GIL; raises what a signal handler
// raised while it ran.
template <class T, class Args>
void run_kernel(i64 (*measure)(const Args&), void (*run)(const Args&, T*), Args& a) {
  auto ws = alloc_workspace<T>(measure(a));
  SignalPoll signals;
  a.interrupt = rnnkit::Interrupt{&SignalPoll::poll, &signals};
  {
    py::gil_scoped_release nogil;
    run(a, static_cast<T*>(ws.get()));
  }
  if (signals.raised) {
    PyErr_Restore(signals.type, signals.value, signals.traceback);
    throw py::error_already_set();
  }
}

// Keyword arguments, matched in one pass over the call's keyword names. pybind11's py::arg
// matching interns every parameter name again on every call (PyUnicode_InternFromString per
// parameter: ~700 instructions each, 35k per forward + backward pair, measured with callgrind;
// 5% of a T=100, B=1, H=64 RNN forward), and a py::kwargs function gets a dict built first.
// forward and backward are therefore plain METH_FASTCALL | METH_KEYWORDS functions: the names
// are interned once, at import, and matched by identity against the call's keyword names
// (CPython interns those written at a call site), else by value. An X-list names each
// parameter once: the struct of values and the table of names are both made from it.
struct Keywords {
  const char* fn;
  std::vector<PyObject*> names;  // interned, alive for the life of the process
  std::vector<bool> required;
  Keywords(const char* f, std::initializer_list<std::pair<const char*, bool>> params) : fn(f) {
    for (const auto& p : params) {
      names.push_back(PyUnicode_InternFromString(p.first));
      required.push_back(p.second);
    }
  }
  // values[i] = the argument named names[i], None when absent; TypeError for an unknown,
  // missing or positional one. args[0:n_kw] are the values of the keywords in kwnames.
  void parse(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, py::object* values) const {
    if (nargs != 0)
      throw py::type_error(std::string(fn) + "(): takes keyword arguments only, got " +
                           std::to_string(nargs) + " positional");
    const size_t n = names.size();
    const Py_ssize_t n_kw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < n_kw; ++k) {
      PyObject* key = PyTuple_GET_ITEM(kwnames, k);
      size_t i = 0;
      while (i < n && names[i] != key) ++i;
      if (i == n)
        for (i = 0; i < n && PyUnicode_Compare(names[i], key) != 0; ++i) {
        }
      if (i == n)
        throw py::type_error(std::string(fn) + "(): unexpected keyword argument '" +
                             std::string(py::str(key)) + "'");
      values[i] = py::reinterpret_borrow<py::object>(args[k]);
    }
    for (size_t i = 0; i < n; ++i) {
      if (values[i]) continue;
      if (required[i])
        throw py::type_error(std::string(fn) + "(): missing keyword argument '" +
                             std::string(py::str(names[i])) + "'");
      values[i] = py::none();
    }
  }
};

// Runs body() for a METH_FASTCALL function: C++ exceptions become Python ones.
template <class Body>
PyObject* python_call(const Body& body) {
  try {
    body();
    Py_RETURN_NONE;
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

// The parameters of forward and backward: X(name, required).
// The formatter re-wraps these lists differently on every run: they keep this layout.
// clang-format off
#define RNNKIT_FORWARD_PARAMS(X)                                                       \
  X(cell, 1) X(x, 1) X(w_ih, 1) X(w_hh, 1) X(b_ih, 0) X(b_hh, 0) X(h0, 1) X(c0, 0)     \
  X(w_peep, 0) X(w_proj, 0) X(lengths, 0) X(reverse, 0) X(input_forget, 0)             \
  X(linear_before_reset, 0) X(clip, 0) X(y, 1) X(h, 1) X(c, 0) X(gates, 1) X(hn, 0)    \
  X(clip_mask, 0) X(resets, 0) X(zoneout, 0) X(zoneout_c, 0) X(recurrent_mask, 0)         \
  X(ln_ih, 0) X(ln_hh, 0) X(ln_c, 0) X(ih_hat, 0) X(hh_hat, 0) X(c_hat, 0) X(ln_rstd, 0)
#define RNNKIT_BACKWARD_PARAMS(X)                                                      \
  X(cell, 1) X(x, 1) X(w_ih, 1) X(w_hh, 1) X(w_peep, 0) X(w_proj, 0) X(lengths, 0)     \
  X(reverse, 0) X(input_forget, 0) X(linear_before_reset, 0) X(clip, 0) X(h, 1)        \
  X(c, 0) X(gates, 1) X(hn, 0) X(clip_mask, 0) X(dy, 1) X(dh_n, 1) X(dc_n, 0) X(dx, 1) \
  X(dh0, 1) X(dc0, 0) X(dw_ih, 1) X(dw_hh, 1) X(db_ih, 0) X(db_hh, 0) X(dw_peep, 0)    \
  X(dw_proj, 0) X(resets, 0) X(zoneout, 0) X(zoneout_c, 0) X(recurrent_mask, 0)          \
  X(ln_ih, 0) X(ln_hh, 0) X(ln_c, 0) X(ih_hat, 0) X(hh_hat, 0) X(c_hat, 0) X(ln_rstd, 0) \
  X(dln_ih, 0) X(dln_hh, 0) X(dln_c, 0)
// clang-format on
#define RNNKIT_FIELD(name, req) py::object name;
#define RNNKIT_NAME(name, req) {#name, req != 0},

struct FwdKw {
  RNNKIT_FORWARD_PARAMS(RNNKIT_FIELD)
};
struct BwdKw {
  RNNKIT_BACKWARD_PARAMS(RNNKIT_FIELD)
};
static_assert(sizeof(FwdKw) == 32 * sizeof(py::object), "FwdKw: one object per parameter");
static_assert(sizeof(BwdKw) == 42 * sizeof(py::object), "BwdKw: one object per parameter");

const Keywords& forward_keywords() {
  static const Keywords* k = new Keywords("forward", {RNNKIT_FORWARD_PARAMS(RNNKIT_NAME)});
  return *k;
}
const Keywords& backward_keywords() {
  static const Keywords* k = new Keywords("backward", {RNNKIT_BACKWARD_PARAMS(RNNKIT_NAME)});
  return *k;
}

// The Python members of _core.Cell, in kinds.h order: a call's cell is found by identity
// (reading an enum member's .value runs Python code: two calls of enum's property per call).
std::vector<PyObject*> g_cell_members;

rnnkit::Cell cell_arg(const py::object& v) {
  for (size_t i = 0; i < g_cell_members.size(); ++i)
    if (g_cell_members[i] == v.ptr()) return rnnkit::kCells[i].id;
  try {
    return v.cast<rnnkit::Cell>();
  } catch (const py::cast_error&) {
    throw py::type_error("cell: expected a rnnkit._core.Cell, got " +
                         std::string(py::str(py::type::of(v).attr("__name__"))));
  }
}
bool flag_arg(const py::object& v, const char* name, bool absent) {
  if (v.is_none()) return absent;
  if (!PyBool_Check(v.ptr())) throw py::type_error(std::string(name) + ": expected a bool");
  return v.ptr() == Py_True;
}
// The clip bound: 0 = no clipping.
double clip_arg(const py::object& v) {
  const double clip = v.is_none() ? 0.0 : PyFloat_AsDouble(v.ptr());
  if (clip == -1.0 && PyErr_Occurred()) throw py::error_already_set();
  if (!(clip >= 0.0)) throw py::value_error("clip: expected a number >= 0 (0 = no clipping)");
  return clip;
}

void forward(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  FwdKw v;
  forward_keywords().parse(args, nargs, kwnames, reinterpret_cast<py::object*>(&v));
  const rnnkit::Cell cell = cell_arg(v.cell);
  const rnnkit::CellInfo& info = cell_info(cell);
  const rnnkit::Dims d = dims_of(info, v.x, v.w_hh, v.w_proj);
  const i64 T = d.T, B = d.B, I = d.I, H = d.H, P = d.P, GH = d.G * d.H;
  const bool st = info.cell_state, pp = info.peep_proj;
  const double clip = clip_arg(v.clip);
  with_dtype(v.x, "x", [&](auto tag) {
    using Real = typename decltype(tag)::type;
    rnnkit::FwdArgs<Real> a{};
    a.cell = cell;
    a.d = d;
    a.x = arg_ptr<Real>(v.x, "x", {T, B, I}, false);
    a.w_ih = arg_ptr<Real>(v.w_ih, "w_ih", {GH, I}, false);
    a.w_hh = arg_ptr<Real>(v.w_hh, "w_hh", {GH, P}, false);
    a.b_ih = arg_ptr<Real>(v.b_ih, "b_ih", {GH}, false, true);
    a.b_hh = arg_ptr<Real>(v.b_hh, "b_hh", {GH}, false, true);
    a.h0 = arg_ptr<Real>(v.h0, "h0", {B, P}, false);
    a.c0 = st ? arg_ptr<Real>(v.c0, "c0", {B, H}, false) : nullptr;
    a.w_peep = pp ? arg_ptr<Real>(v.w_peep, "w_peep", {3, H}, false, true) : nullptr;
    a.w_proj = pp ? arg_ptr<Real>(v.w_proj, "w_proj", {P, H}, false, true) : nullptr;
    a.lengths = lengths_ptr(v.lengths, B, T);
    a.resets = resets_ptr(v.resets, T, B);
    a.reverse = flag_arg(v.reverse, "reverse", false);
    if (a.resets && a.reverse) throw py::value_error("resets: expected None with reverse=True");
    a.zoneout = arg_ptr<Real>(v.zoneout, "zoneout", {T, B, P}, false, true);
    a.zoneout_c = st ? arg_ptr<Real>(v.zoneout_c, "zoneout_c", {T, B, H}, false, true) : nullptr;
    a.recurrent_mask = arg_ptr<Real>(v.recurrent_mask, "recurrent_mask", {B, P}, false, true);
    a.input_forget = pp && flag_arg(v.input_forget, "input_forget", false);
    a.linear_before_reset = flag_arg(v.linear_before_reset, "linear_before_reset", true);
    a.clip = static_cast<Real>(clip);
    a.y = arg_ptr<Real>(v.y, "y", {T, B, P}, true);
    a.h = arg_ptr<Real>(v.h, "h", {T + 1, B, P}, true);
    a.c = st ? arg_ptr<Real>(v.c, "c", {T + 1, B, H}, true) : nullptr;
    a.gates = arg_ptr<Real>(v.gates, "gates", {T, B, GH}, true);
    a.hn = info.hn_cache ? arg_ptr<Real>(v.hn, "hn", {T, B, H}, true) : nullptr;
    // clip_mask decides whether the kernel clips, so it is written whenever clip > 0, also
    // when clip rounds to 0 in float32 (then everything is clipped to 0, as the reference does)
    a.clip_mask = clip > 0 ? arg_ptr<std::uint8_t>(v.clip_mask, "clip_mask", {T, B, GH}, true)
                           : nullptr;
    ln_into<Real>(a, v, info, d, true);
    a.n_threads = rnnkit::get_num_threads();
    a.direct_ok = true;  // a call of few rows reads the weights unpacked, as forward_fast does
    const auto& k = rnnkit::current_table().of<Real>();
    run_kernel<Real>(k.fwd_workspace, k.fwd, a);
  });
}

void backward(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  BwdKw v;
  backward_keywords().parse(args, nargs, kwnames, reinterpret_cast<py::object*>(&v));
  const rnnkit::Cell cell = cell_arg(v.cell);
  const rnnkit::CellInfo& info = cell_info(cell);
  const rnnkit::Dims d = dims_of(info, v.x, v.w_hh, v.w_proj);
  const i64 T = d.T, B = d.B, I = d.I, H = d.H, P = d.P, GH = d.G * d.H;
  const bool st = info.cell_state, pp = info.peep_proj;
  const double clip = clip_arg(v.clip);
  with_dtype(v.x, "x", [&](auto tag) {
    using Real = typename decltype(tag)::type;
    rnnkit::BwdArgs<Real> a{};
    a.cell = cell;
    a.d = d;
    a.x = arg_ptr<Real>(v.x, "x", {T, B, I}, false);
    a.w_ih = arg_ptr<Real>(v.w_ih, "w_ih", {GH, I}, false);
    a.w_hh = arg_ptr<Real>(v.w_hh, "w_hh", {GH, P}, false);
    a.w_peep = pp ? arg_ptr<Real>(v.w_peep, "w_peep", {3, H}, false, true) : nullptr;
    a.w_proj = pp ? arg_ptr<Real>(v.w_proj, "w_proj", {P, H}, false, true) : nullptr;
    a.lengths = lengths_ptr(v.lengths, B, T);
    a.resets = resets_ptr(v.resets, T, B);
    a.reverse = flag_arg(v.reverse, "reverse", false);
    if (a.resets && a.reverse) throw py::value_error("resets: expected None with reverse=True");
    a.zoneout = arg_ptr<Real>(v.zoneout, "zoneout", {T, B, P}, false, true);
    a.zoneout_c = st ? arg_ptr<Real>(v.zoneout_c, "zoneout_c", {T, B, H}, false, true) : nullptr;
    a.recurrent_mask = arg_ptr<Real>(v.recurrent_mask, "recurrent_mask", {B, P}, false, true);
    a.input_forget = pp && flag_arg(v.input_forget, "input_forget", false);
    a.linear_before_reset = flag_arg(v.linear_before_reset, "linear_before_reset", true);
    a.clip = static_cast<Real>(clip);
    a.h = arg_ptr<Real>(v.h, "cache.h", {T + 1, B, P}, false);
    a.c = st ? arg_ptr<Real>(v.c, "cache.c", {T + 1, B, H}, false) : nullptr;
    a.gates = arg_ptr<Real>(v.gates, "cache.gates", {T, B, GH}, false);
    a.hn = info.hn_cache ? arg_ptr<Real>(v.hn, "cache.hn", {T, B, H}, false) : nullptr;
    a.clip_mask = clip > 0
                      ? arg_ptr<std::uint8_t>(v.clip_mask, "cache.clip_mask", {T, B, GH}, false)
                      : nullptr;
    a.dy = arg_ptr<Real>(v.dy, "dy", {T, B, P}, false);
    a.dh_n = arg_ptr<Real>(v.dh_n, "dh_n", {B, P}, false);
    a.dc_n = st ? arg_ptr<Real>(v.dc_n, "dc_n", {B, H}, false) : nullptr;
    a.dx = arg_ptr<Real>(v.dx, "dx", {T, B, I}, true);
    a.dh0 = arg_ptr<Real>(v.dh0, "dh0", {B, P}, true);
    a.dc0 = st ? arg_ptr<Real>(v.dc0, "dc0", {B, H}, true) : nullptr;
    a.dw_ih = arg_ptr<Real>(v.dw_ih, "dw_ih", {GH, I}, true);
    a.dw_hh = arg_ptr<Real>(v.dw_hh, "dw_hh", {GH, P}, true);
    a.db_ih = arg_ptr<Real>(v.db_ih, "db_ih", {GH}, true, true);
    a.db_hh = arg_ptr<Real>(v.db_hh, "db_hh", {GH}, true, true);
    a.dw_peep = pp ? arg_ptr<Real>(v.dw_peep, "dw_peep", {3, H}, true, true) : nullptr;
    a.dw_proj = pp ? arg_ptr<Real>(v.dw_proj, "dw_proj", {P, H}, true, true) : nullptr;
    if ((a.w_peep == nullptr) != (a.dw_peep == nullptr))
      throw py::value_error("dw_peep: expected an array exactly when w_peep is given");
    if ((a.w_proj == nullptr) != (a.dw_proj == nullptr))
      throw py::value_error("dw_proj: expected an array exactly when w_proj is given");
    const LnArgs<Real> ln = ln_into<Real>(a, v, info, d, false);
    a.dln_ih = ln_part<Real>(v.dln_ih, "dln_ih", {2, GH}, true, ln.ih, "ln_ih");
    a.dln_hh = ln_part<Real>(v.dln_hh, "dln_hh", {2, GH}, true, ln.hh, "ln_hh");
    a.dln_c = ln_part<Real>(v.dln_c, "dln_c", {2, H}, true, ln.c, "ln_c");
    a.n_threads = rnnkit::get_num_threads();
    const auto& k = rnnkit::current_table().of<Real>();
    run_kernel<Real>(k.bwd_workspace, k.bwd, a);
  });
}

// --- The common call without the Python validation (issue 13: per-call overhead) -------------
// forward_fast(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse, input_forget,
//              linear_before_reset, extra), all positional, runs a forward whose arguments need
// nothing from rnnkit/_checks.py: exact ndarrays whose dtype is the float32 or float64
// singleton of x, C-contiguous and aligned, of the shapes that x [T, B, I] and w_hh [G*H, H]
// give (T, B, H > 0); biases, h0 and c0 arrays or None; the flags exact bools; c0 and
// input_forget only for the LSTM. It allocates the outputs and returns
//   (y, h_n, c_n, h, c, gates, hn, x, w_ih, w_hh, b_ih, b_hh, reverse, input_forget,
//    linear_before_reset, extra)
// (None where the cell has no such array; `extra` is handed back as it came), which the caller
// assembles into the cell's Output and Cache. Anything else returns None, never an error for
// the arguments: the caller then runs the validated path, which raises the documented errors.
// The validation, the allocations and the NamedTuples of that path cost ~10 us a call (3x a
// T=1, H=64 LSTM's kernel); this costs well under one.
using Proxy = py::detail::PyArray_Proxy;
// The float32 and float64 dtype singletons, set at import (with NumPy's C API, whose first use
// imports NumPy: a first use during a call could switch threads inside a C++ static's guard,
// and two threads then deadlock, as two directions of a layer on two threads did).
PyObject* g_fast_descr[2] = {nullptr, nullptr};
constexpr int kFastFlags = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ |
                           py::detail::npy_api::NPY_ARRAY_ALIGNED_;

// o as an exact ndarray of this dtype object, rank and shape (-1: any size), else null.
const Proxy* fast_array(PyObject* o, PyObject* descr, std::initializer_list<i64> shape) {
  if (Py_TYPE(o) != py::detail::npy_api::get().PyArray_Type_) return nullptr;
  const Proxy* p = py::detail::array_proxy(o);
  if (p->descr != descr || (p->flags & kFastFlags) != kFastFlags) return nullptr;
  if (p->nd != static_cast<int>(shape.size())) return nullptr;
  int i = 0;
  for (i64 n : shape)
    if (n >= 0 && p->dimensions[i++] != n) return nullptr;
  return p;
}

template <class T>
T* data_of(const py::object& a) {
  return reinterpret_cast<T*>(py::detail::array_proxy(a.ptr())->data);
}

// Zeros for an absent h0 or c0 (the kernel copies them into h[0], c[0]): one buffer per thread.
template <class T>
const T* fast_zeros(i64 n) {
  thread_local std::vector<T> z;
  if (static_cast<i64>(z.size()) < n) z.assign(static_cast<size_t>(n), T(0));
  return z.data();
}

template <class Real>
py::object forward_fast_typed(rnnkit::Cell cell, const rnnkit::CellInfo& info, PyObject* const* v,
                              PyObject* descr, const Proxy* x, const Proxy* w_hh) {
  PyObject* const none = Py_None;
  const int G = info.gates;
  const i64 T = x->dimensions[0], B = x->dimensions[1], I = x->dimensions[2];
  const i64 H = w_hh->dimensions[0] / G, GH = G * H;
  const bool st = info.cell_state;
  const Proxy* w_ih = fast_array(v[2], descr, {GH, I});
  if (!w_ih || w_hh->dimensions[1] != H) return py::none();
  const Proxy* b[2] = {nullptr, nullptr};
  for (int i = 0; i < 2; ++i)
    if (v[4 + i] != none && !(b[i] = fast_array(v[4 + i], descr, {GH}))) return py::none();
  const Proxy* h0 = nullptr;
  const Proxy* c0 = nullptr;
  if (v[6] != none && !(h0 = fast_array(v[6], descr, {B, H}))) return py::none();
  if (v[7] != none && !(st && (c0 = fast_array(v[7], descr, {B, H})))) return py::none();

  py::object y = rnnkit::pooled_empty(descr, {T, B, H}),
             h = rnnkit::pooled_empty(descr, {T + 1, B, H});
  py::object gates = rnnkit::pooled_empty(descr, {T, B, GH});
  py::object c = st ? rnnkit::pooled_empty(descr, {T + 1, B, H}) : py::none();
  py::object hn = info.hn_cache ? rnnkit::pooled_empty(descr, {T, B, H}) : py::none();
  rnnkit::FwdArgs<Real> a{};
  a.cell = cell;
  a.d = rnnkit::Dims{T, B, I, H, H, G};
  a.x = reinterpret_cast<const Real*>(x->data);
  a.w_ih = reinterpret_cast<const Real*>(w_ih->data);
  a.w_hh = reinterpret_cast<const Real*>(w_hh->data);
  a.b_ih = b[0] ? reinterpret_cast<const Real*>(b[0]->data) : nullptr;
  a.b_hh = b[1] ? reinterpret_cast<const Real*>(b[1]->data) : nullptr;
  const Real* zeros = (h0 && (c0 || !st)) ? nullptr : fast_zeros<Real>(B * H);
  a.h0 = h0 ? reinterpret_cast<const Real*>(h0->data) : zeros;
  a.c0 = st ? (c0 ? reinterpret_cast<const Real*>(c0->data) : zeros) : nullptr;
  a.reverse = v[8] == Py_True;
  a.input_forget = v[9] == Py_True;
  a.linear_before_reset = v[10] == Py_True;
  a.y = data_of<Real>(y);
  a.h = data_of<Real>(h);
  a.c = st ? data_of<Real>(c) : nullptr;
  a.gates = data_of<Real>(gates);
  a.hn = info.hn_cache ? data_of<Real>(hn) : nullptr;
  a.n_threads = rnnkit::get_num_threads();
  a.direct_ok = true;
  const auto& k = rnnkit::current_table().of<Real>();
  run_kernel<Real>(k.fwd_workspace, k.fwd, a);

  py::object h_n = rnnkit::pooled_empty(descr, {B, H});
  std::memcpy(data_of<Real>(h_n), a.h + T * B * H, sizeof(Real) * B * H);
  py::object c_n = py::none();
  if (st) {
    c_n = rnnkit::pooled_empty(descr, {B, H});
    std::memcpy(data_of<Real>(c_n), a.c + T * B * H, sizeof(Real) * B * H);
  }
  PyObject* items[16] = {y.ptr(),  h_n.ptr(), c_n.ptr(), h.ptr(), c.ptr(), gates.ptr(),
                         hn.ptr(), v[1],      v[2],      v[3],    v[4],    v[5],
                         v[8],     v[9],      v[10],     v[11]};
  PyObject* out = PyTuple_New(16);
  if (!out) throw py::error_already_set();
  for (int i = 0; i < 16; ++i) {
    Py_INCREF(items[i]);
    PyTuple_SET_ITEM(out, i, items[i]);
  }
  return py::reinterpret_steal<py::object>(out);
}

py::object forward_fast(PyObject* const* v, Py_ssize_t nargs) {
  if (nargs != 12) throw py::type_error("forward_fast(): expected 12 positional arguments");
  rnnkit::Cell cell;
  size_t i = 0;
  while (i < g_cell_members.size() && g_cell_members[i] != v[0]) ++i;
  if (i == g_cell_members.size()) return py::none();
  cell = rnnkit::kCells[i].id;
  const rnnkit::CellInfo& info = cell_info(cell);
  for (int f = 8; f < 11; ++f)
    if (v[f] != Py_True && v[f] != Py_False) return py::none();
  if (v[9] == Py_True && !info.peep_proj) return py::none();  // input_forget: the LSTM's
  PyObject* const f32 = g_fast_descr[0];
  PyObject* const f64 = g_fast_descr[1];
  if (Py_TYPE(v[1]) != py::detail::npy_api::get().PyArray_Type_) return py::none();
  PyObject* descr = py::detail::array_proxy(v[1])->descr;
  if (descr != f32 && descr != f64) return py::none();
  const Proxy* x = fast_array(v[1], descr, {-1, -1, -1});
  const Proxy* w_hh = fast_array(v[3], descr, {-1, -1});
  if (!x || !w_hh || x->dimensions[0] < 1 || x->dimensions[1] < 1 || w_hh->dimensions[0] < 1 ||
      w_hh->dimensions[0] % info.gates != 0)
    return py::none();
  if (descr == f32) return forward_fast_typed<float>(cell, info, v, descr, x, w_hh);
  return forward_fast_typed<double>(cell, info, v, descr, x, w_hh);
}

// A function of simd/math.h by its enum value or its name ("exp", "sigmoid", "tanh").
rnnkit::MathFn math_fn_of(const py::object& fn) {
  if (py::isinstance<rnnkit::MathFn>(fn)) return fn.cast<rnnkit::MathFn>();
  const std::string name = py::str(fn);
  if (name == "exp") return rnnkit::MathFn::kExp;
  if (name == "sigmoid") return rnnkit::MathFn::kSigmoid;
  if (name == "tanh") return rnnkit::MathFn::kTanh;
  throw py::value_error("fn: expected 'exp', 'sigmoid' or 'tanh', got '" + name + "'");
}

py::object math_eval(const py::object& fn_obj, const py::object& x) {
  const rnnkit::MathFn fn = math_fn_of(fn_obj);
  return with_dtype(x, "x", [&](auto tag) -> py::object {
    using T = typename decltype(tag)::type;
    const i64 n = static_cast<i64>(py::reinterpret_borrow<py::array>(x).size());
    const T* xp = arg_ptr<T>(x, "x", {n}, false);
    py::array_t<T> y(n);
    T* yp = y.mutable_data();
    const auto& k = rnnkit::current_table().of<T>();
    py::gil_scoped_release nogil;
    k.math(fn, xp, yp, n);
    return std::move(y);
  });
}

py::object gemm_py(const py::object& a, const py::object& b, const py::object& b2) {
  return with_dtype(a, "a", [&](auto tag) -> py::object {
    using T = typename decltype(tag)::type;
    auto as = shape_of(a, "a", 2), bs = shape_of(b, "b", 2);
    if (as[1] != bs[0])
      throw py::value_error("b: expected shape " + shape_str({as[1], bs[1]}) + ", got " +
                            shape_str(bs));
    const T* ap = arg_ptr<T>(a, "a", Shape(as), false);
    const T* bp = arg_ptr<T>(b, "b", Shape(bs), false);
    py::array_t<T> c({as[0], bs[1]});
    T* cp = c.mutable_data();
    const int nth = rnnkit::get_num_threads();
    const auto& k = rnnkit::current_table().of<T>();
    if (b2.is_none()) {
      auto ws = alloc_workspace<T>(k.gemm_workspace(as[0], bs[1], as[1], nth));
      py::gil_scoped_release nogil;
      k.gemm(as[0], bs[1], as[1], ap, bp, cp, static_cast<T*>(ws.get()), nth);
      return std::move(c);
    }
    auto b2s = shape_of(b2, "b2", 2);
    if (b2s[0] != as[1])
      throw py::value_error("b2: expected shape " + shape_str({as[1], b2s[1]}) + ", got " +
                            shape_str(b2s));
    const T* b2p = arg_ptr<T>(b2, "b2", Shape(b2s), false);
    py::array_t<T> c2({as[0], b2s[1]});
    T* c2p = c2.mutable_data();
    auto ws = alloc_workspace<T>(k.gemm_pair_workspace(bs[1], b2s[1], as[1], nth));
    {
      py::gil_scoped_release nogil;
      k.gemm_pair(as[0], bs[1], b2s[1], as[1], ap, bp, b2p, cp, c2p, static_cast<T*>(ws.get()),
                  nth);
    }
    return py::make_tuple(std::move(c), std::move(c2));
  });
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnkit native kernels (private; use the functions in rnnkit).";
  // Python enum.Enum classes: a cell or a function is named, never a bare int.
  py::native_enum<rnnkit::Cell> cells(m, "Cell", "enum.Enum",
                                      "The cells of the kernels (cpp/cells/kinds.h).");
  for (const rnnkit::CellInfo& info : rnnkit::kCells) cells.value(info.name, info.id);
  cells.finalize();
  for (const rnnkit::CellInfo& info : rnnkit::kCells)  // alive as long as the module
    g_cell_members.push_back(m.attr("Cell").attr(info.name).ptr());
  py::native_enum<rnnkit::MathFn>(m, "MathFn", "enum.Enum",
                                  "The element-wise functions of cpp/simd/math.h.")
      .value("EXP", rnnkit::MathFn::kExp)
      .value("SIGMOID", rnnkit::MathFn::kSigmoid)
      .value("TANH", rnnkit::MathFn::kTanh)
      .finalize();

  static PyMethodDef kernel_defs[] = {
      {"forward",
       reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(
           +[](PyObject*, PyObject* const* a, Py_ssize_t n, PyObject* kw) -> PyObject* {
             return python_call([&] { forward(a, n, kw); });
           })),
       METH_FASTCALL | METH_KEYWORDS,
       "forward(*, cell: Cell, x, w_ih, w_hh, b_ih=None, b_hh=None, h0, c0=None, w_peep=None,\n"
       "        w_proj=None, lengths=None, reverse=False, input_forget=False,\n"
       "        linear_before_reset=True, clip=0.0, y, h, c=None, gates, hn=None,\n"
       "        clip_mask=None, resets=None, zoneout=None, zoneout_c=None, ln_ih=None,\n"
       "        ln_hh=None, ln_c=None, ih_hat=None, hh_hat=None, c_hat=None, ln_rstd=None)\n"
       "        -> None\n\n"
       "Forward of one layer over a sequence; writes y, h, c, gates, hn, clip_mask in place.\n"
       "Keyword arguments only."},
      {"backward",
       reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(
           +[](PyObject*, PyObject* const* a, Py_ssize_t n, PyObject* kw) -> PyObject* {
             return python_call([&] { backward(a, n, kw); });
           })),
       METH_FASTCALL | METH_KEYWORDS,
       "backward(*, cell: Cell, x, w_ih, w_hh, w_peep=None, w_proj=None, lengths=None,\n"
       "         reverse=False, input_forget=False, linear_before_reset=True, clip=0.0, h,\n"
       "         c=None, gates, hn=None, clip_mask=None, dy, dh_n, dc_n=None, dx, dh0,\n"
       "         dc0=None, dw_ih, dw_hh, db_ih=None, db_hh=None, dw_peep=None,\n"
       "         dw_proj=None, resets=None, zoneout=None, zoneout_c=None, ln_ih=None,\n"
       "         ln_hh=None, ln_c=None, ih_hat=None, hh_hat=None, c_hat=None, ln_rstd=None,\n"
       "         dln_ih=None, dln_hh=None, dln_c=None) -> None\n\n"
       "Backward of one layer over a sequence; writes the gradient arrays in place.\n"
       "Keyword arguments only."},
      {"forward_fast",
       reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(
           +[](PyObject*, PyObject* const* a, Py_ssize_t n) -> PyObject* {
             PyObject* out = nullptr;
             PyObject* r = python_call([&] { out = forward_fast(a, n).release().ptr(); });
             if (!r) return nullptr;
             Py_DECREF(r);
             return out;
           })),
       METH_FASTCALL,
       "forward_fast(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse, input_forget,\n"
       "             linear_before_reset, extra) -> tuple | None\n\n"
       "The common forward without the Python validation (see bindings.cpp); None: not\n"
       "that case, validate and call forward."},
  };
  rnnkit::bind_pool(m);
  for (PyMethodDef& def : kernel_defs)
    m.add_object(def.ml_name, py::reinterpret_steal<py::object>(
                                  PyCFunction_NewEx(&def, nullptr, m.attr("__name__").ptr())));
  m.def("_math_eval", &math_eval, py::arg("fn"), py::arg("x"),
        "fn(x) elementwise with rnnkit's SIMD math (fn: a MathFn or its name).");
  m.def("_gemm", &gemm_py, py::arg("a"), py::arg("b"), py::arg("b2") = py::none(),
        "C = a @ b with rnnkit's GEMM (C-contiguous 2-D arrays of one dtype); with b2, the\n"
        "pair (a @ b, a @ b2) as one product that packs a once.");

  g_fast_descr[0] = py::dtype::of<float>().release().ptr();  // kept for the module's life
  g_fast_descr[1] = py::dtype::of<double>().release().ptr();
  rnnkit::bind_stream(m);

  m.def("simd_targets", &rnnkit::usable_targets,
        "Compiled SIMD targets this CPU runs, best first.");
  m.def("compiled_targets", &rnnkit::compiled_targets);
  m.def("get_simd_target", [] { return std::string(rnnkit::current_table().name); });
  m.def("set_simd_target", [](const std::string& name) {
    try {
      rnnkit::set_target(name);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  });
  m.def("get_num_threads", &rnnkit::get_num_threads);
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("n: expected a thread count >= 1, got " + std::to_string(n));
    rnnkit::set_num_threads(n);
  });
  m.def("default_num_threads", &rnnkit::default_num_threads);

  // --- CPU description and FMA peak (issue 15: rnnkit info / rnnkit bench) ---
  m.def(
      "_cpu_info",
      [] {
        const rnnkit::CpuFeatures& f = rnnkit::cpu_features();
        char names[512];
        py::dict d;
        d["vendor"] = std::string(f.vendor_id);
        d["model_name"] = std::string(f.brand);
        d["family"] = f.family;
        d["model"] = f.model;
        d["stepping"] = f.stepping;
        d["l1d_bytes"] = f.l1d;
        d["l2_bytes"] = f.l2;
        d["l3_bytes"] = f.l3;
        d["l2_shared_by"] = f.l2_shared;
        d["l3_shared_by"] = f.l3_shared;
        d["caches_from_cpuid"] = f.caches_from_cpuid;
        d["hypervisor"] = f.hypervisor;
        d["features"] = std::string(rnnkit::cpu_feature_names(f, names, sizeof(names)));
        return d;
      },
      "The detected CPU: vendor, model, family/model, cache sizes (cpuid), features.");
  m.def(
      "_fma_peak",
      [](const std::string& target, const std::string& dtype, double seconds) {
        if (dtype != "float32" && dtype != "float64")
          throw py::value_error("dtype: expected 'float32' or 'float64', got '" + dtype + "'");
        if (!(seconds > 0 && seconds <= 10))
          throw py::value_error("seconds: expected a duration in (0, 10], got " +
                                std::to_string(seconds));
        try {
          py::gil_scoped_release nogil;
          return rnnkit::fma_peak_gflops(target, dtype == "float64" ? 8 : 4, seconds);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(std::string("target: ") + e.what());
        }
      },
      "GFLOP/s of one core's independent FMA chains on a SIMD target (the FMA peak).");
  // The GEMM's tile and blocking per target and dtype (gemm_params.h); the setter is for
  // tests (forcing every tile and blocking) and must not run while another thread computes.
  const auto gemm_elem = [](const std::string& dtype) {
    if (dtype != "float32" && dtype != "float64")
      throw py::value_error("dtype: expected 'float32' or 'float64', got '" + dtype + "'");
    return dtype == "float64" ? 8 : 4;
  };
  m.def(
      "_gemm_params",
      [gemm_elem](const std::string& target, const std::string& dtype) {
        const int elem = gemm_elem(dtype);
        try {
          const rnnkit::GemmTuning& t = rnnkit::gemm_tuning(target);
          const rnnkit::GemmParams p = t.get(elem);
          py::list tiles;
          const int lanes = elem == 8 ? t.lanes_f64 : t.lanes_f32;
          for (int i = 0; i < t.n_tiles; ++i)
            tiles.append(py::make_tuple(t.tiles[i].mr, t.tiles[i].nv * lanes));
          py::dict d;
          d["tile"] = p.tile;
          d["mr"] = t.tiles[p.tile].mr;
          d["nr"] = t.tiles[p.tile].nv * lanes;
          d["kc"] = p.kc;
          d["mc"] = p.mc;
          d["nc"] = p.nc;
          d["tiles"] = tiles;
          d["family"] = std::string(rnnkit::gemm_family_name(rnnkit::cpu_features()));
          return d;
        } catch (const std::invalid_argument& e) {
          throw py::value_error(std::string("target: ") + e.what());
        }
      },
      "The GEMM tile (mr x nr) and blocking (kc, mc, nc) a target uses for a dtype.");
  m.def(
      "_set_gemm_params",
      [gemm_elem](const std::string& target, const std::string& dtype, py::object tile, i64 kc,
                  i64 mc, i64 nc) {
        const int elem = gemm_elem(dtype);
        const rnnkit::GemmTuning* t = nullptr;
        try {
          t = &rnnkit::gemm_tuning(target);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(std::string("target: ") + e.what());
        }
        if (tile.is_none()) {
          t->set(elem, nullptr);
          return;
        }
        const int ti = tile.cast<int>();
        if (ti < 0 || ti >= t->n_tiles)
          throw py::value_error("tile: expected 0.." + std::to_string(t->n_tiles - 1) + ", got " +
                                std::to_string(ti));
        const i64 mr = t->tiles[ti].mr;
        const i64 nr = t->tiles[ti].nv * (elem == 8 ? t->lanes_f64 : t->lanes_f32);
        if (kc < rnnkit::kMinKc || kc > rnnkit::kMaxKc || kc % 8)
          throw py::value_error("kc: expected a multiple of 8 in [8, 1024], got " +
                                std::to_string(kc));
        if (mc < mr || mc > rnnkit::kMaxMc || mc % mr)
          throw py::value_error("mc: expected a multiple of mr=" + std::to_string(mr) +
                                " up to 1024, got " + std::to_string(mc));
        if (nc < nr || nc % nr)
          throw py::value_error("nc: expected a positive multiple of nr=" + std::to_string(nr) +
                                ", got " + std::to_string(nc));
        const rnnkit::GemmParams p{ti, kc, mc, nc};
        t->set(elem, &p);
      },
      "Forces a GEMM tile and blocking (tests only); tile=None restores the detected choice.");
  // --- end of issue 15 block ---
  py::dict build;
#if defined(__clang__)
  build["compiler"] = "clang " __clang_version__;
#elif defined(__GNUC__)
  build["compiler"] = "gcc " __VERSION__;
#else
  build["compiler"] = "unknown";
#endif
#ifdef RNNKIT_BUILD_FLAGS
  build["flags"] = RNNKIT_BUILD_FLAGS;
#else
  build["flags"] = "";
#endif
#ifdef RNNKIT_BUILD_TYPE
  build["build_type"] = RNNKIT_BUILD_TYPE;
#endif
  m.attr("build_info") = build;
}
