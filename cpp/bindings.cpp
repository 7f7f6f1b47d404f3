// The Python boundary (the only file that includes pybind11): `rnnkit._core`.
//
// The public API validates arguments in Python (rnnkit/_checks.py) so both backends raise the
// same errors; this file checks again everything a kernel trusts (dtype, shape, contiguity,
// writability) so that even a direct call of `_core` cannot crash the interpreter. Outputs are
// NumPy arrays allocated by the caller. The workspace is allocated here, then the GIL is
// released for the kernel call.
#include <pybind11/native_enum.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "dispatch.h"
#include "kernel_api.h"
#include "threads.h"

namespace py = pybind11;
using rnnkit::i64;

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

// Checks one array argument and returns its data pointer (null for an allowed None).
template <class T>
T* arg_ptr(const py::object& obj, const char* name, const std::vector<i64>& shape, bool writable,
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
  std::vector<i64> got(a.shape(), a.shape() + a.ndim());
  if (got != shape)
    throw py::value_error(std::string(name) + ": expected shape " + shape_str(shape) + ", got " +
                          shape_str(got));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
  if (writable && !a.writeable())
    throw py::value_error(std::string(name) + ": expected a writable array");
  return static_cast<T*>(const_cast<void*>(a.data()));
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
  if (n < 0 || static_cast<unsigned long long>(n) > (1ull << 60) / sizeof(T)) throw std::bad_alloc();
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
  return py::isinstance<py::array>(x) && same_dtype(py::reinterpret_borrow<py::array>(x).dtype(), dt);
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

// Sizes the workspace, then runs the kernel without the GIL.
template <class T, class Args>
void run_kernel(i64 (*measure)(const Args&), void (*run)(const Args&, T*), const Args& a) {
  auto ws = alloc_workspace<T>(measure(a));
  py::gil_scoped_release nogil;
  run(a, static_cast<T*>(ws.get()));
}

double checked_clip(double clip) {
  if (!(clip >= 0.0)) throw py::value_error("clip: expected a number >= 0 (0 = no clipping)");
  return clip;
}

void forward(rnnkit::Cell cell, const py::object& x, const py::object& w_ih,
             const py::object& w_hh, const py::object& b_ih, const py::object& b_hh,
             const py::object& h0, const py::object& c0, const py::object& w_peep,
             const py::object& w_proj, const py::object& lengths, bool reverse,
             bool input_forget, bool linear_before_reset, double clip, const py::object& y,
             const py::object& h, const py::object& c, const py::object& gates,
             const py::object& hn, const py::object& clip_mask) {
  const rnnkit::CellInfo& info = cell_info(cell);
  const rnnkit::Dims d = dims_of(info, x, w_hh, w_proj);
  const i64 T = d.T, B = d.B, I = d.I, H = d.H, P = d.P, GH = d.G * d.H;
  with_dtype(x, "x", [&](auto tag) {
    using Real = typename decltype(tag)::type;
    rnnkit::FwdArgs<Real> a{};
    a.cell = cell;
    a.d = d;
    a.x = arg_ptr<Real>(x, "x", {T, B, I}, false);
    a.w_ih = arg_ptr<Real>(w_ih, "w_ih", {GH, I}, false);
    a.w_hh = arg_ptr<Real>(w_hh, "w_hh", {GH, P}, false);
    a.b_ih = arg_ptr<Real>(b_ih, "b_ih", {GH}, false, true);
    a.b_hh = arg_ptr<Real>(b_hh, "b_hh", {GH}, false, true);
    a.h0 = arg_ptr<Real>(h0, "h0", {B, P}, false);
    a.c0 = info.cell_state ? arg_ptr<Real>(c0, "c0", {B, H}, false) : nullptr;
    a.w_peep = info.peep_proj ? arg_ptr<Real>(w_peep, "w_peep", {3, H}, false, true) : nullptr;
    a.w_proj = info.peep_proj ? arg_ptr<Real>(w_proj, "w_proj", {P, H}, false, true) : nullptr;
    a.lengths = lengths_ptr(lengths, B, T);
    a.reverse = reverse;
    a.input_forget = info.peep_proj && input_forget;
    a.linear_before_reset = linear_before_reset;
    a.clip = static_cast<Real>(checked_clip(clip));
    a.y = arg_ptr<Real>(y, "y", {T, B, P}, true);
    a.h = arg_ptr<Real>(h, "h", {T + 1, B, P}, true);
    a.c = info.cell_state ? arg_ptr<Real>(c, "c", {T + 1, B, H}, true) : nullptr;
    a.gates = arg_ptr<Real>(gates, "gates", {T, B, GH}, true);
    a.hn = info.hn_cache ? arg_ptr<Real>(hn, "hn", {T, B, H}, true) : nullptr;
    // clip_mask decides whether the kernel clips, so it is written whenever clip > 0, also
    // when clip rounds to 0 in float32 (then everything is clipped to 0, as the reference does)
    a.clip_mask =
        clip > 0 ? arg_ptr<std::uint8_t>(clip_mask, "clip_mask", {T, B, GH}, true) : nullptr;
    a.n_threads = rnnkit::get_num_threads();
    const auto& k = rnnkit::current_table().of<Real>();
    run_kernel<Real>(k.fwd_workspace, k.fwd, a);
  });
}

void backward(rnnkit::Cell cell, const py::object& x, const py::object& w_ih,
              const py::object& w_hh, const py::object& w_peep, const py::object& w_proj,
              const py::object& lengths, bool reverse, bool input_forget,
              bool linear_before_reset, double clip, const py::object& h, const py::object& c,
              const py::object& gates, const py::object& hn, const py::object& clip_mask,
              const py::object& dy, const py::object& dh_n, const py::object& dc_n,
              const py::object& dx, const py::object& dh0, const py::object& dc0,
              const py::object& dw_ih, const py::object& dw_hh, const py::object& db_ih,
              const py::object& db_hh, const py::object& dw_peep, const py::object& dw_proj) {
  const rnnkit::CellInfo& info = cell_info(cell);
  const rnnkit::Dims d = dims_of(info, x, w_hh, w_proj);
  const i64 T = d.T, B = d.B, I = d.I, H = d.H, P = d.P, GH = d.G * d.H;
  const bool st = info.cell_state, pp = info.peep_proj;
  with_dtype(x, "x", [&](auto tag) {
    using Real = typename decltype(tag)::type;
    rnnkit::BwdArgs<Real> a{};
    a.cell = cell;
    a.d = d;
    a.x = arg_ptr<Real>(x, "x", {T, B, I}, false);
    a.w_ih = arg_ptr<Real>(w_ih, "w_ih", {GH, I}, false);
    a.w_hh = arg_ptr<Real>(w_hh, "w_hh", {GH, P}, false);
    a.w_peep = pp ? arg_ptr<Real>(w_peep, "w_peep", {3, H}, false, true) : nullptr;
    a.w_proj = pp ? arg_ptr<Real>(w_proj, "w_proj", {P, H}, false, true) : nullptr;
    a.lengths = lengths_ptr(lengths, B, T);
    a.reverse = reverse;
    a.input_forget = pp && input_forget;
    a.linear_before_reset = linear_before_reset;
    a.clip = static_cast<Real>(checked_clip(clip));
    a.h = arg_ptr<Real>(h, "cache.h", {T + 1, B, P}, false);
    a.c = st ? arg_ptr<Real>(c, "cache.c", {T + 1, B, H}, false) : nullptr;
    a.gates = arg_ptr<Real>(gates, "cache.gates", {T, B, GH}, false);
    a.hn = info.hn_cache ? arg_ptr<Real>(hn, "cache.hn", {T, B, H}, false) : nullptr;
    a.clip_mask =
        clip > 0 ? arg_ptr<std::uint8_t>(clip_mask, "cache.clip_mask", {T, B, GH}, false) : nullptr;
    a.dy = arg_ptr<Real>(dy, "dy", {T, B, P}, false);
    a.dh_n = arg_ptr<Real>(dh_n, "dh_n", {B, P}, false);
    a.dc_n = st ? arg_ptr<Real>(dc_n, "dc_n", {B, H}, false) : nullptr;
    a.dx = arg_ptr<Real>(dx, "dx", {T, B, I}, true);
    a.dh0 = arg_ptr<Real>(dh0, "dh0", {B, P}, true);
    a.dc0 = st ? arg_ptr<Real>(dc0, "dc0", {B, H}, true) : nullptr;
    a.dw_ih = arg_ptr<Real>(dw_ih, "dw_ih", {GH, I}, true);
    a.dw_hh = arg_ptr<Real>(dw_hh, "dw_hh", {GH, P}, true);
    a.db_ih = arg_ptr<Real>(db_ih, "db_ih", {GH}, true, true);
    a.db_hh = arg_ptr<Real>(db_hh, "db_hh", {GH}, true, true);
    a.dw_peep = pp ? arg_ptr<Real>(dw_peep, "dw_peep", {3, H}, true, true) : nullptr;
    a.dw_proj = pp ? arg_ptr<Real>(dw_proj, "dw_proj", {P, H}, true, true) : nullptr;
    if ((a.w_peep == nullptr) != (a.dw_peep == nullptr))
      throw py::value_error("dw_peep: expected an array exactly when w_peep is given");
    if ((a.w_proj == nullptr) != (a.dw_proj == nullptr))
      throw py::value_error("dw_proj: expected an array exactly when w_proj is given");
    a.n_threads = rnnkit::get_num_threads();
    const auto& k = rnnkit::current_table().of<Real>();
    run_kernel<Real>(k.bwd_workspace, k.bwd, a);
  });
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

py::object gemm_py(const py::object& a, const py::object& b) {
  return with_dtype(a, "a", [&](auto tag) -> py::object {
    using T = typename decltype(tag)::type;
    auto as = shape_of(a, "a", 2), bs = shape_of(b, "b", 2);
    if (as[1] != bs[0])
      throw py::value_error("b: expected shape " + shape_str({as[1], bs[1]}) + ", got " +
                            shape_str(bs));
    const T* ap = arg_ptr<T>(a, "a", as, false);
    const T* bp = arg_ptr<T>(b, "b", bs, false);
    py::array_t<T> c({as[0], bs[1]});
    T* cp = c.mutable_data();
    const int nth = rnnkit::get_num_threads();
    const auto& k = rnnkit::current_table().of<T>();
    auto ws = alloc_workspace<T>(k.gemm_workspace(as[0], bs[1], as[1], nth));
    py::gil_scoped_release nogil;
    k.gemm(as[0], bs[1], as[1], ap, bp, cp, static_cast<T*>(ws.get()), nth);
    return std::move(c);
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
  py::native_enum<rnnkit::MathFn>(m, "MathFn", "enum.Enum",
                                  "The element-wise functions of cpp/simd/math.h.")
      .value("EXP", rnnkit::MathFn::kExp)
      .value("SIGMOID", rnnkit::MathFn::kSigmoid)
      .value("TANH", rnnkit::MathFn::kTanh)
      .finalize();

  const py::object none = py::none();
  m.def("forward", &forward, py::kw_only(), py::arg("cell"), py::arg("x"), py::arg("w_ih"),
        py::arg("w_hh"), py::arg("b_ih") = none, py::arg("b_hh") = none, py::arg("h0"),
        py::arg("c0") = none, py::arg("w_peep") = none, py::arg("w_proj") = none,
        py::arg("lengths") = none, py::arg("reverse") = false, py::arg("input_forget") = false,
        py::arg("linear_before_reset") = true, py::arg("clip") = 0.0, py::arg("y"),
        py::arg("h"), py::arg("c") = none, py::arg("gates"), py::arg("hn") = none,
        py::arg("clip_mask") = none,
        "Forward of one layer over a sequence; writes y, h, c, gates, hn, clip_mask in place.");
  m.def("backward", &backward, py::kw_only(), py::arg("cell"), py::arg("x"), py::arg("w_ih"),
        py::arg("w_hh"), py::arg("w_peep") = none, py::arg("w_proj") = none,
        py::arg("lengths") = none, py::arg("reverse") = false, py::arg("input_forget") = false,
        py::arg("linear_before_reset") = true, py::arg("clip") = 0.0, py::arg("h"),
        py::arg("c") = none, py::arg("gates"), py::arg("hn") = none,
        py::arg("clip_mask") = none, py::arg("dy"), py::arg("dh_n"), py::arg("dc_n") = none,
        py::arg("dx"), py::arg("dh0"), py::arg("dc0") = none, py::arg("dw_ih"),
        py::arg("dw_hh"), py::arg("db_ih") = none, py::arg("db_hh") = none,
        py::arg("dw_peep") = none, py::arg("dw_proj") = none,
        "Backward of one layer over a sequence; writes the gradient arrays in place.");
  m.def("_math_eval", &math_eval, py::arg("fn"), py::arg("x"),
        "fn(x) elementwise with rnnkit's SIMD math (fn: a MathFn or its name).");
  m.def("_gemm", &gemm_py, py::arg("a"), py::arg("b"),
        "C = a @ b with rnnkit's GEMM (C-contiguous 2-D arrays of one dtype).");

  m.def("simd_targets", &rnnkit::usable_targets, "Compiled SIMD targets this CPU runs, best first.");
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
