// The Python boundary (the only file that includes pybind11): `rnnkit._core`.
//
// The public API validates arguments in Python (rnnkit/_checks.py) so both backends raise the
// same errors; this file checks again everything a kernel trusts (dtype, shape, contiguity,
// writability) so that even a direct call of `_core` cannot crash the interpreter. Outputs are
// NumPy arrays allocated by the caller. The workspace is allocated here, then the GIL is
// released for the kernel call.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "cpu_features.h"
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

int gate_count(int cell) {
  switch (cell) {
    case rnnkit::kRnnTanh:
    case rnnkit::kRnnRelu: return 1;
    case rnnkit::kLstm: return 4;
    case rnnkit::kGru: return 3;
  }
  throw py::value_error("cell: expected 0..3, got " + std::to_string(cell));
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
rnnkit::Dims dims_of(int cell, const py::object& x, const py::object& w_hh,
                     const py::object& w_proj) {
  const int G = gate_count(cell);
  auto xs = shape_of(x, "x", 3);
  auto ws = shape_of(w_hh, "w_hh", 2);
  if (ws[0] % G != 0)
    throw py::value_error("w_hh: expected a first dimension divisible by " + std::to_string(G) +
                          ", got " + std::to_string(ws[0]));
  rnnkit::Dims d{xs[0], xs[1], xs[2], ws[0] / G, ws[1], G};
  if (w_proj.is_none()) {
    if (d.P != d.H)
      throw py::value_error("w_hh: expected shape " + shape_str({G * d.H, d.H}) + ", got " +
                            shape_str(ws));
  } else {
    if (cell != rnnkit::kLstm) throw py::value_error("w_proj: only the LSTM has a projection");
  }
  return d;
}

template <class Real>
void forward_t(int cell, const rnnkit::Dims& d, py::object x, py::object w_ih, py::object w_hh,
               py::object b_ih, py::object b_hh, py::object h0, py::object c0, py::object w_peep,
               py::object w_proj, py::object lengths, bool reverse, bool input_forget,
               bool linear_before_reset, double clip, py::object y, py::object h, py::object c,
               py::object gates, py::object hn, py::object clip_mask) {
  const i64 T = d.T, B = d.B, I = d.I, H = d.H, P = d.P, GH = d.G * d.H;
  const bool lstm = cell == rnnkit::kLstm, gru = cell == rnnkit::kGru;
  rnnkit::FwdArgs<Real> a{};
  a.cell = cell;
  a.d = d;
  a.x = arg_ptr<Real>(x, "x", {T, B, I}, false);
  a.w_ih = arg_ptr<Real>(w_ih, "w_ih", {GH, I}, false);
  a.w_hh = arg_ptr<Real>(w_hh, "w_hh", {GH, P}, false);
  a.b_ih = arg_ptr<Real>(b_ih, "b_ih", {GH}, false, true);
  a.b_hh = arg_ptr<Real>(b_hh, "b_hh", {GH}, false, true);
  a.h0 = arg_ptr<Real>(h0, "h0", {B, P}, false);
  a.c0 = lstm ? arg_ptr<Real>(c0, "c0", {B, H}, false) : nullptr;
  a.w_peep = lstm ? arg_ptr<Real>(w_peep, "w_peep", {3, H}, false, true) : nullptr;
  a.w_proj = lstm ? arg_ptr<Real>(w_proj, "w_proj", {P, H}, false, true) : nullptr;
  a.lengths = lengths_ptr(lengths, B, T);
  a.reverse = reverse;
  a.input_forget = lstm && input_forget;
  a.linear_before_reset = linear_before_reset;
  if (!(clip >= 0.0)) throw py::value_error("clip: expected a number >= 0 (0 = no clipping)");
  a.clip = static_cast<Real>(clip);
  a.y = arg_ptr<Real>(y, "y", {T, B, P}, true);
  a.h = arg_ptr<Real>(h, "h", {T + 1, B, P}, true);
  a.c = lstm ? arg_ptr<Real>(c, "c", {T + 1, B, H}, true) : nullptr;
  a.gates = arg_ptr<Real>(gates, "gates", {T, B, GH}, true);
  a.hn = gru ? arg_ptr<Real>(hn, "hn", {T, B, H}, true) : nullptr;
  a.clip_mask = clip > 0 ? arg_ptr<std::uint8_t>(clip_mask, "clip_mask", {T, B, GH}, true) : nullptr;
  a.n_threads = rnnkit::get_num_threads();
  const rnnkit::KernelTable& k = rnnkit::current_table();
  if constexpr (std::is_same_v<Real, float>) {
    auto ws = alloc_workspace<float>(k.fwd_workspace_f32(a));
    py::gil_scoped_release nogil;
    k.fwd_f32(a, static_cast<float*>(ws.get()));
  } else {
    auto ws = alloc_workspace<double>(k.fwd_workspace_f64(a));
    py::gil_scoped_release nogil;
    k.fwd_f64(a, static_cast<double*>(ws.get()));
  }
}

template <class Real>
void backward_t(int cell, const rnnkit::Dims& d, py::object x, py::object w_ih, py::object w_hh,
                py::object w_peep, py::object w_proj, py::object lengths, bool reverse,
                bool input_forget, bool linear_before_reset, double clip, py::object h,
                py::object c, py::object gates, py::object hn, py::object clip_mask,
                py::object dy, py::object dh_n, py::object dc_n, py::object dx, py::object dh0,
                py::object dc0, py::object dw_ih, py::object dw_hh, py::object db_ih,
                py::object db_hh, py::object dw_peep, py::object dw_proj) {
  const i64 T = d.T, B = d.B, I = d.I, H = d.H, P = d.P, GH = d.G * d.H;
  const bool lstm = cell == rnnkit::kLstm, gru = cell == rnnkit::kGru;
  rnnkit::BwdArgs<Real> a{};
  a.cell = cell;
  a.d = d;
  a.x = arg_ptr<Real>(x, "x", {T, B, I}, false);
  a.w_ih = arg_ptr<Real>(w_ih, "w_ih", {GH, I}, false);
  a.w_hh = arg_ptr<Real>(w_hh, "w_hh", {GH, P}, false);
  a.w_peep = lstm ? arg_ptr<Real>(w_peep, "w_peep", {3, H}, false, true) : nullptr;
  a.w_proj = lstm ? arg_ptr<Real>(w_proj, "w_proj", {P, H}, false, true) : nullptr;
  a.lengths = lengths_ptr(lengths, B, T);
  a.reverse = reverse;
  a.input_forget = lstm && input_forget;
  a.linear_before_reset = linear_before_reset;
  if (!(clip >= 0.0)) throw py::value_error("clip: expected a number >= 0 (0 = no clipping)");
  a.clip = static_cast<Real>(clip);
  a.h = arg_ptr<Real>(h, "cache.h", {T + 1, B, P}, false);
  a.c = lstm ? arg_ptr<Real>(c, "cache.c", {T + 1, B, H}, false) : nullptr;
  a.gates = arg_ptr<Real>(gates, "cache.gates", {T, B, GH}, false);
  a.hn = gru ? arg_ptr<Real>(hn, "cache.hn", {T, B, H}, false) : nullptr;
  a.clip_mask =
      clip > 0 ? arg_ptr<std::uint8_t>(clip_mask, "cache.clip_mask", {T, B, GH}, false) : nullptr;
  a.dy = arg_ptr<Real>(dy, "dy", {T, B, P}, false);
  a.dh_n = arg_ptr<Real>(dh_n, "dh_n", {B, P}, false);
  a.dc_n = lstm ? arg_ptr<Real>(dc_n, "dc_n", {B, H}, false) : nullptr;
  a.dx = arg_ptr<Real>(dx, "dx", {T, B, I}, true);
  a.dh0 = arg_ptr<Real>(dh0, "dh0", {B, P}, true);
  a.dc0 = lstm ? arg_ptr<Real>(dc0, "dc0", {B, H}, true) : nullptr;
  a.dw_ih = arg_ptr<Real>(dw_ih, "dw_ih", {GH, I}, true);
  a.dw_hh = arg_ptr<Real>(dw_hh, "dw_hh", {GH, P}, true);
  a.db_ih = arg_ptr<Real>(db_ih, "db_ih", {GH}, true, true);
  a.db_hh = arg_ptr<Real>(db_hh, "db_hh", {GH}, true, true);
  a.dw_peep = lstm ? arg_ptr<Real>(dw_peep, "dw_peep", {3, H}, true, true) : nullptr;
  a.dw_proj = lstm ? arg_ptr<Real>(dw_proj, "dw_proj", {P, H}, true, true) : nullptr;
  if (lstm && (a.w_peep == nullptr) != (a.dw_peep == nullptr))
    throw py::value_error("dw_peep: expected an array exactly when w_peep is given");
  if (lstm && (a.w_proj == nullptr) != (a.dw_proj == nullptr))
    throw py::value_error("dw_proj: expected an array exactly when w_proj is given");
  a.n_threads = rnnkit::get_num_threads();
  const rnnkit::KernelTable& k = rnnkit::current_table();
  if constexpr (std::is_same_v<Real, float>) {
    auto ws = alloc_workspace<float>(k.bwd_workspace_f32(a));
    py::gil_scoped_release nogil;
    k.bwd_f32(a, static_cast<float*>(ws.get()));
  } else {
    auto ws = alloc_workspace<double>(k.bwd_workspace_f64(a));
    py::gil_scoped_release nogil;
    k.bwd_f64(a, static_cast<double*>(ws.get()));
  }
}

bool is_dtype(const py::object& x, const py::dtype& dt) {
  return py::isinstance<py::array>(x) && same_dtype(py::reinterpret_borrow<py::array>(x).dtype(), dt);
}

[[noreturn]] void bad_x_dtype(const py::object& x) {
  std::string got = py::isinstance<py::array>(x)
                        ? std::string(py::str(py::reinterpret_borrow<py::array>(x).dtype()))
                        : std::string(py::str(py::type::of(x).attr("__name__")));
  throw py::type_error("x: expected dtype float32 or float64, got " + got);
}

template <class T>
py::array_t<T> math_eval_t(int fn, py::array_t<T, 0> x) {
  const T* xp = arg_ptr<T>(x, "x", {static_cast<i64>(x.size())}, false);
  py::array_t<T> y(x.size());
  T* yp = y.mutable_data();
  const rnnkit::KernelTable& k = rnnkit::current_table();
  const i64 n = static_cast<i64>(x.size());
  py::gil_scoped_release nogil;
  if constexpr (std::is_same_v<T, float>) k.math_f32(fn, xp, yp, n);
  else k.math_f64(fn, xp, yp, n);
  return y;
}

template <class T>
py::array_t<T> gemm_t(py::array a, py::array b) {
  auto as = shape_of(a, "a", 2), bs = shape_of(b, "b", 2);
  if (as[1] != bs[0])
    throw py::value_error("b: expected shape " + shape_str({as[1], bs[1]}) + ", got " +
                          shape_str(bs));
  const T* ap = arg_ptr<T>(a, "a", as, false);
  const T* bp = arg_ptr<T>(b, "b", bs, false);
  py::array_t<T> c({as[0], bs[1]});
  T* cp = c.mutable_data();
  const int nth = rnnkit::get_num_threads();
  const rnnkit::KernelTable& k = rnnkit::current_table();
  if constexpr (std::is_same_v<T, float>) {
    auto ws = alloc_workspace<float>(k.gemm_workspace_f32(as[0], bs[1], as[1], nth));
    py::gil_scoped_release nogil;
    k.gemm_f32(as[0], bs[1], as[1], ap, bp, cp, static_cast<float*>(ws.get()), nth);
  } else {
    auto ws = alloc_workspace<double>(k.gemm_workspace_f64(as[0], bs[1], as[1], nth));
    py::gil_scoped_release nogil;
    k.gemm_f64(as[0], bs[1], as[1], ap, bp, cp, static_cast<double*>(ws.get()), nth);
  }
  return c;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnkit native kernels (private; use the functions in rnnkit).";
  m.attr("CELL_RNN_TANH") = int(rnnkit::kRnnTanh);
  m.attr("CELL_RNN_RELU") = int(rnnkit::kRnnRelu);
  m.attr("CELL_LSTM") = int(rnnkit::kLstm);
  m.attr("CELL_GRU") = int(rnnkit::kGru);

  m.def(
      "forward",
      [](int cell, py::object x, py::object w_ih, py::object w_hh, py::object b_ih,
         py::object b_hh, py::object h0, py::object c0, py::object w_peep, py::object w_proj,
         py::object lengths, bool reverse, bool input_forget, bool linear_before_reset,
         double clip, py::object y, py::object h, py::object c, py::object gates, py::object hn,
         py::object clip_mask) {
        const rnnkit::Dims d = dims_of(cell, x, w_hh, w_proj);
        if (is_dtype(x, py::dtype::of<float>()))
          forward_t<float>(cell, d, x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_peep, w_proj, lengths,
                           reverse, input_forget, linear_before_reset, clip, y, h, c, gates, hn,
                           clip_mask);
        else if (is_dtype(x, py::dtype::of<double>()))
          forward_t<double>(cell, d, x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_peep, w_proj, lengths,
                            reverse, input_forget, linear_before_reset, clip, y, h, c, gates, hn,
                            clip_mask);
        else
          bad_x_dtype(x);
      },
      "Forward of one layer over a sequence; writes y, h, c, gates, hn, clip_mask in place.");

  m.def(
      "backward",
      [](int cell, py::object x, py::object w_ih, py::object w_hh, py::object w_peep,
         py::object w_proj, py::object lengths, bool reverse, bool input_forget,
         bool linear_before_reset, double clip, py::object h, py::object c, py::object gates,
         py::object hn, py::object clip_mask, py::object dy, py::object dh_n, py::object dc_n,
         py::object dx, py::object dh0, py::object dc0, py::object dw_ih, py::object dw_hh,
         py::object db_ih, py::object db_hh, py::object dw_peep, py::object dw_proj) {
        const rnnkit::Dims d = dims_of(cell, x, w_hh, w_proj);
        if (is_dtype(x, py::dtype::of<float>()))
          backward_t<float>(cell, d, x, w_ih, w_hh, w_peep, w_proj, lengths, reverse,
                            input_forget, linear_before_reset, clip, h, c, gates, hn, clip_mask,
                            dy, dh_n, dc_n, dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_peep,
                            dw_proj);
        else if (is_dtype(x, py::dtype::of<double>()))
          backward_t<double>(cell, d, x, w_ih, w_hh, w_peep, w_proj, lengths, reverse,
                             input_forget, linear_before_reset, clip, h, c, gates, hn, clip_mask,
                             dy, dh_n, dc_n, dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_peep,
                             dw_proj);
        else
          bad_x_dtype(x);
      },
      "Backward of one layer over a sequence; writes the gradient arrays in place.");

  m.def("_math_eval", [](const std::string& fn, py::object x) -> py::object {
    int code = fn == "exp" ? 0 : fn == "sigmoid" ? 1 : fn == "tanh" ? 2 : -1;
    if (code < 0) throw py::value_error("fn: expected 'exp', 'sigmoid' or 'tanh', got '" + fn + "'");
    if (is_dtype(x, py::dtype::of<float>())) return math_eval_t<float>(code, x);
    if (is_dtype(x, py::dtype::of<double>())) return math_eval_t<double>(code, x);
    bad_x_dtype(x);
  });
  m.def("_gemm", [](py::array a, py::array b) -> py::object {
    if (is_dtype(a, py::dtype::of<float>())) return gemm_t<float>(a, b);
    if (is_dtype(a, py::dtype::of<double>())) return gemm_t<double>(a, b);
    throw py::type_error("a: expected dtype float32 or float64");
  }, "C = a @ b with rnnkit's GEMM (C-contiguous 2-D arrays of one dtype).");

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

  // --- CPU description and FMA peak (issue 15: rnnkit info / rnnkit bench) ---
  m.def("_cpu_info", [] {
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
  }, "The detected CPU: vendor, model, family/model, cache sizes (cpuid), features.");
  m.def("_fma_peak", [](const std::string& target, const std::string& dtype, double seconds) {
    if (dtype != "float32" && dtype != "float64")
      throw py::value_error("dtype: expected 'float32' or 'float64', got '" + dtype + "'");
    if (!(seconds > 0 && seconds <= 10))
      throw py::value_error("seconds: expected a duration in (0, 10], got " + std::to_string(seconds));
    try {
      py::gil_scoped_release nogil;
      return rnnkit::fma_peak_gflops(target, dtype == "float64" ? 8 : 4, seconds);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(std::string("target: ") + e.what());
    }
  }, "GFLOP/s of one core's independent FMA chains on a SIMD target (the FMA peak).");
  // The GEMM's tile and blocking per target and dtype (gemm_params.h); the setter is for
  // tests (forcing every tile and blocking) and must not run while another thread computes.
  const auto gemm_elem = [](const std::string& dtype) {
    if (dtype != "float32" && dtype != "float64")
      throw py::value_error("dtype: expected 'float32' or 'float64', got '" + dtype + "'");
    return dtype == "float64" ? 8 : 4;
  };
  m.def("_gemm_params", [gemm_elem](const std::string& target, const std::string& dtype) {
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
  }, "The GEMM tile (mr x nr) and blocking (kc, mc, nc) a target uses for a dtype.");
  m.def("_set_gemm_params", [gemm_elem](const std::string& target, const std::string& dtype,
                                        py::object tile, i64 kc, i64 mc, i64 nc) {
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
      throw py::value_error("kc: expected a multiple of 8 in [8, 1024], got " + std::to_string(kc));
    if (mc < mr || mc > rnnkit::kMaxMc || mc % mr)
      throw py::value_error("mc: expected a multiple of mr=" + std::to_string(mr) +
                            " up to 1024, got " + std::to_string(mc));
    if (nc < nr || nc % nr)
      throw py::value_error("nc: expected a positive multiple of nr=" + std::to_string(nr) +
                            ", got " + std::to_string(nc));
    const rnnkit::GemmParams p{ti, kc, mc, nc};
    t->set(elem, &p);
  }, "Forces a GEMM tile and blocking (tests only); tile=None restores the detected choice.");
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
