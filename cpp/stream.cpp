// Native streams (`rnnkit._core.Stream`): a stack of unidirectional layers whose weights are
// packed once, then fed one step (or a chunk of steps) at a time with the state kept here.
//
// Each layer owns a workspace laid out by the sequence driver (sequence.h): the first call
// packs w_ih^T, w_hh^T and the cell's own weights (w_proj^T, w_hn^T, folded biases) into it;
// every later call passes FwdArgs::packed = true, so the driver and the cell skip packing and
// read the panels left there. At batch 1 the driver's GEMM reads the single row of h (or x)
// in place against these panels: a matrix-vector product whose inner loop is a contiguous FMA
// over NR output columns, with the cell's own pointwise pass after it. A step therefore costs
// one pass over the weights plus the pointwise work; run(x) is the whole-sequence machinery
// (chunked input projection, per-step recurrent product) on the same panels.
//
// The packed layout depends on the SIMD target and the GEMM's tile and blocking (gemm_params.h),
// the workspace size on the thread count: a change of any re-measures the workspace and packs
// again on the next call.
// The weights are NumPy arrays owned by the Python Stream (copies of the layer's) and kept
// alive here; the state h[L, B, P] (and c[L, B, H]) lives here. A step allocates its output
// only (or none with out=), releases the GIL for the kernels, and refuses a second thread
// entering the same stream (RuntimeError) instead of racing on the state.
//
// Zoneout in eval is its expectation, the constant rate p: the stream keeps zoneout (and, for
// the LSTM, zoneout_c) buffers [T, B, P] filled with p in its scratch and hands them to the
// driver, which reads them as any call's masks (the same arithmetic as the layer's eval call,
// no kernel variant of its own; the buffers are as large as the step's h).
//
// bfloat16 streams (float32 only) also hold w_ih and w_hh as bf16.h panels, packed once per
// target, which the driver's two products read instead (FwdArgs::w_ih16, w_hh16); the cells'
// own products (LSTM projection, GRU w_hn) read float32 panels of the rounded weights.
//
// Layer norm: a layer tuple may carry ln_ih, ln_hh and ln_c after its six weights (copies made
// by rnnkit.Stream at snapshot time, None where absent); the norms' cache goes to scratch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "dispatch.h"
#include "gemm_params.h"
#include "kernel_api.h"
#include "threads.h"

namespace py = pybind11;

namespace rnnkit {
namespace {

// A 64-byte aligned buffer of n elements of E (n may be 0), zero-filled when asked.
template <class E>
class Buffer {
 public:
  void resize(i64 n, bool zero = true) {
    const size_t bytes = static_cast<size_t>(round_up((n > 0 ? n : 1) * sizeof(E), 64));
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    if (zero) std::memset(p, 0, bytes);
    p_.reset(static_cast<E*>(p));
    n_ = n;
  }
  E* get() const { return p_.get(); }
  i64 size() const { return n_; }

 private:
  struct Free {
    void operator()(E* p) const { std::free(p); }
  };
  std::unique_ptr<E, Free> p_;
  i64 n_ = 0;
};

std::string shape_text(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}
std::string shape_text(i64 r, i64 c) {
  return "(" + std::to_string(r) + ", " + std::to_string(c) + ")";
}

// What an argument is, for messages: "a float64 array of shape (2, 3)", "a read-only ...".
std::string describe(const py::handle& obj) {
  if (!py::isinstance<py::array>(obj))
    return std::string(py::str(py::type::of(obj).attr("__name__")));
  py::array a = py::reinterpret_borrow<py::array>(obj);
  const std::string how = std::string(a.writeable() ? "" : "read-only ") +
                          (a.flags() & py::array::c_style ? "" : "non-C-contiguous ");
  return "a " + how + std::string(py::str(a.dtype())) + " array of shape " + shape_text(a);
}

// The data of a weight of the constructor: a C-contiguous T array [rows, cols] ([rows] with
// cols < 0), or None when optional. These come from rnnkit.Stream, which copied them from a
// validated layer; the one combined check keeps a direct call from crashing.
template <class T>
const T* weight(const py::handle& obj, const char* name, i64 rows, i64 cols, bool optional) {
  if (optional && obj.is_none()) return nullptr;
  bool ok = py::isinstance<py::array>(obj);
  if (ok) {
    py::array a = py::reinterpret_borrow<py::array>(obj);
    ok = (cols < 0 ? (a.ndim() == 1 && a.shape(0) == rows)
                   : (a.ndim() == 2 && a.shape(0) == rows && a.shape(1) == cols)) &&
         (a.flags() & py::array::c_style) && a.dtype().equal(py::dtype::of<T>());
    if (ok) return static_cast<const T*>(a.data());
  }
  throw py::value_error(std::string(name) + ": expected a C-contiguous " +
                        std::string(py::str(py::dtype::of<T>())) + " array of shape " +
                        (cols < 0 ? "(" + std::to_string(rows) + ",)" : shape_text(rows, cols)) +
                        ", got " + describe(obj));
}

bool same_params(const GemmParams& a, const GemmParams& b) {
  return a.tile == b.tile && a.kc == b.kc && a.mc == b.mc && a.nc == b.nc;
}

class StreamBase {
 public:
  virtual ~StreamBase() = default;
  virtual py::object step(const py::object& x, const py::object& out) = 0;
  virtual py::object run(const py::object& x) = 0;
  virtual py::tuple state() const = 0;
  virtual void set_state(const py::object& h, const py::object& c) = 0;
};

template <class T>
class StreamImpl final : public StreamBase {
 public:
  StreamImpl(Cell cell, const py::list& layers, i64 B, bool input_forget, bool linear_before_reset,
             double clip, bool bf16, double zoneout, py::object slow_check)
      : slow_check_(std::move(slow_check)), dtype_(py::dtype::of<T>()), bf16_(bf16) {
    if (!(zoneout >= 0.0 && zoneout <= 1.0))
      throw py::value_error("zoneout: expected a rate in [0, 1], got " + std::to_string(zoneout));
    zoneout_ = static_cast<T>(zoneout);
    if (bf16 && !std::is_same_v<T, float>)
      throw py::value_error("weight_dtype: 'bfloat16' needs float32 weights");
    const CellInfo* info = find_cell(cell);
    if (!info) throw py::value_error("cell: expected a value of rnnkit._core.Cell");
    info_ = info;
    if (B < 1)
      throw py::value_error("batch_size: expected an integer >= 1, got " + std::to_string(B));
    if (layers.size() < 1) throw py::value_error("layers: expected at least one layer");
    const int G = info->gates;
    i64 in = -1;
    for (const py::handle& item : layers) {
      py::tuple t = py::reinterpret_borrow<py::tuple>(item);
      if (!py::isinstance<py::tuple>(item) || (t.size() != 6 && t.size() != 9))
        throw py::type_error(
            "layers: expected tuples (w_ih, w_hh, b_ih, b_hh, w_peep, w_proj[, ln_ih, ln_hh, "
            "ln_c])");
      Layer& L = layers_.emplace_back();
      for (size_t i = 0; i < t.size(); ++i) L.keep[i] = py::reinterpret_borrow<py::object>(t[i]);
      py::array w_hh = py::reinterpret_borrow<py::array>(t[1]);
      py::array w_ih = py::reinterpret_borrow<py::array>(t[0]);
      if (!py::isinstance<py::array>(t[0]) || !py::isinstance<py::array>(t[1]) ||
          w_hh.ndim() != 2 || w_ih.ndim() != 2 || w_hh.shape(0) % G != 0)
        throw py::value_error("layers: w_ih and w_hh: expected 2-D arrays [G*H, I], [G*H, P]");
      const i64 H = w_hh.shape(0) / G, P = w_hh.shape(1), I = w_ih.shape(1);
      if (in >= 0 && I != in)
        throw py::value_error("layers: w_ih: expected " + std::to_string(in) +
                              " columns (the previous layer's output size), got " +
                              std::to_string(I));
      if (layers_.size() > 1 && (H != layers_.front().a.d.H || P != layers_.front().a.d.P))
        throw py::value_error("layers: expected the same hidden and output sizes in every layer");
      FwdArgs<T>& a = L.a;
      a = FwdArgs<T>{};
      a.cell = cell;
      a.d = Dims{1, B, I, H, P, G};
      a.w_ih = weight<T>(t[0], "w_ih", G * H, I, false);
      a.w_hh = weight<T>(t[1], "w_hh", G * H, P, false);
      a.b_ih = weight<T>(t[2], "b_ih", G * H, -1, true);
      a.b_hh = weight<T>(t[3], "b_hh", G * H, -1, true);
      a.w_peep = info->peep_proj ? weight<T>(t[4], "w_peep", 3, H, true) : nullptr;
      a.w_proj = info->peep_proj ? weight<T>(t[5], "w_proj", P, H, true) : nullptr;
      if (!a.w_proj && P != H)
        throw py::value_error("w_hh: expected " + std::to_string(H) + " columns without w_proj");
      if (t.size() == 9) {
        const bool norms = info->id != Cell::kMgu;
        a.ln_ih = norms ? weight<T>(t[6], "ln_ih", 2, G * H, true) : nullptr;
        a.ln_hh = norms ? weight<T>(t[7], "ln_hh", 2, G * H, true) : nullptr;
        a.ln_c = info->cell_state ? weight<T>(t[8], "ln_c", 2, H, true) : nullptr;
        if ((!norms && !(t[6].is_none() && t[7].is_none())) ||
            (!info->cell_state && !t[8].is_none()))
          throw py::value_error(std::string("layers: the ") + info->name +
                                " cell has no such layer norm");
        ln_ = ln_ || a.ln_ih || a.ln_hh || a.ln_c;
      }
      a.input_forget = info->peep_proj && input_forget;
      a.linear_before_reset = linear_before_reset;
      a.clip = static_cast<T>(clip);
      clip_ = clip > 0;
      in = P;
      max_p_ = P > max_p_ ? P : max_p_;
      h_off_.push_back(h_total_);
      c_off_.push_back(c_total_);
      h_total_ += B * P;
      c_total_ += B * H;
    }
    B_ = B;
    I_ = layers_.front().a.d.I;
    P_ = layers_.back().a.d.P;
    h_.resize(h_total_);
    c_.resize(info->cell_state ? c_total_ : 0);
    step_scratch_ = Scratch(*this, 1);
  }

  py::object step(const py::object& x_obj, const py::object& out_obj) override {
    py::object x = x_obj;
    if (!good(x, {B_, I_})) {
      x = slow_check_(x);  // converts an array-like, or raises the Python error for x_t
      if (!good(x, {B_, I_})) throw py::value_error("x_t: expected a C-contiguous array");
    }
    py::object out;
    if (out_obj.is_none()) {
      out = py::array_t<T>({B_, P_});
    } else {
      if (!good(out_obj, {B_, P_}) || !py::reinterpret_borrow<py::array>(out_obj).writeable())
        throw py::value_error("out: expected a writeable " + std::string(py::str(dtype_)) +
                              " array of shape " + shape_text(B_, P_) + ", got " +
                              describe(out_obj));
      out = out_obj;
    }
    const T* xp = static_cast<const T*>(py::reinterpret_borrow<py::array>(x).data());
    T* yp = static_cast<T*>(py::reinterpret_borrow<py::array>(out).mutable_data());
    Busy busy(busy_);
    py::gil_scoped_release nogil;
    advance(xp, yp, 1, step_scratch_);
    return out;
  }

  py::object run(const py::object& x_obj) override {
    if (!py::isinstance<py::array>(x_obj)) throw py::type_error("x: expected a numpy.ndarray");
    py::array xa = py::reinterpret_borrow<py::array>(x_obj);
    if (xa.ndim() != 3 || !good(x_obj, {xa.shape(0), B_, I_}))
      throw py::value_error("x: expected a C-contiguous array [T, B=" + std::to_string(B_) +
                            ", I=" + std::to_string(I_) + "] of the stream's dtype, got " +
                            describe(x_obj));
    const i64 T_ = xa.shape(0);
    py::array_t<T> y({T_, B_, P_});
    if (T_ == 0) return std::move(y);
    const T* xp = static_cast<const T*>(xa.data());
    T* yp = y.mutable_data();
    Busy busy(busy_);
    py::gil_scoped_release nogil;
    if (run_steps_ < T_) {  // kept for the next run: a chunk size usually repeats
      run_scratch_ = Scratch(*this, T_);
      run_steps_ = T_;
    }
    advance(xp, yp, T_, run_scratch_);
    return std::move(y);
  }

  py::tuple state() const override {
    const i64 L = static_cast<i64>(layers_.size());
    // h[L, B, P] needs one P for every layer; a projection changes only the last one's, so
    // the state is returned per layer when the sizes differ (rnnkit layers never do that).
    py::array_t<T> h({L, B_, layers_.back().a.d.P});
    std::memcpy(h.mutable_data(), h_.get(), sizeof(T) * h_total_);
    if (!info_->cell_state) return py::make_tuple(h, py::none());
    py::array_t<T> c({L, B_, layers_.back().a.d.H});
    std::memcpy(c.mutable_data(), c_.get(), sizeof(T) * c_total_);
    return py::make_tuple(h, c);
  }

  void set_state(const py::object& h, const py::object& c) override {
    const i64 L = static_cast<i64>(layers_.size());
    Busy busy(busy_);
    copy_state(h, "h", h_.get(), h_total_, {L, B_, layers_.back().a.d.P});
    if (info_->cell_state) copy_state(c, "c", c_.get(), c_total_, {L, B_, layers_.back().a.d.H});
  }

 private:
  struct Layer {
    py::object keep[9];  // w_ih, w_hh, b_ih, b_hh, w_peep, w_proj, ln_ih, ln_hh, ln_c: alive as
                         // long as a's pointers
    FwdArgs<T> a;        // sizes, weights, options; the per-call pointers are set by advance()
    Buffer<T> ws;        // the driver's workspace, holding the packed weights once packed
    const KernelTable* packed_by = nullptr;  // the target whose layout ws holds (null: none)
    GemmParams packed_params{};              // and the GEMM tile and blocking it was packed for
    int ws_threads = 0;                      // the thread count ws was measured for
    Buffer<std::uint16_t> w16[2];            // bf16 panels of w_ih and w_hh (bf16 streams)
    const KernelTable* w16_by = nullptr;     // the target whose panel width w16 has
  };

  // The driver's per-call outputs for T steps, shared by the layers (they run one after
  // another): h [T+1, B, maxP], c [T+1, B, maxH], gates [T, B, maxGH], hn [T, B, maxH],
  // clip mask [T, B, maxGH], two [T, B, maxP] buffers for the outputs between layers, with
  // zoneout the rate p as zoneout [T, B, maxP] and zoneout_c [T, B, maxH] (LSTM), and the layer
  // norms' cache: ih_hat, hh_hat [T, B, maxGH], c_hat [T, B, maxH], ln_rstd [T, B, 4].
  struct Scratch {
    Buffer<T> h, c, gates, hn, mid[2], zone, zone_c, ih_hat, hh_hat, c_hat, ln_rstd;
    Buffer<std::uint8_t> mask;
    Scratch() = default;
    Scratch(const StreamImpl& s, i64 T_) {
      i64 mh = 0, mgh = 0;
      for (const Layer& L : s.layers_) {
        mh = L.a.d.H > mh ? L.a.d.H : mh;
        mgh = L.a.d.G * L.a.d.H > mgh ? L.a.d.G * L.a.d.H : mgh;
      }
      const i64 B = s.B_;
      // not zeroed: the driver writes every element before it reads it
      h.resize((T_ + 1) * B * s.max_p_, false);
      if (s.info_->cell_state) c.resize((T_ + 1) * B * mh, false);
      gates.resize(T_ * B * mgh, false);
      if (s.info_->hn_cache) hn.resize(T_ * B * mh, false);
      if (s.clip_) mask.resize(T_ * B * mgh, false);
      if (s.ln_) {
        ih_hat.resize(T_ * B * mgh, false);
        hh_hat.resize(T_ * B * mgh, false);
        c_hat.resize(T_ * B * mh, false);
        ln_rstd.resize(T_ * B * 4, false);
      }
      if (s.layers_.size() > 1)
        for (auto& m : mid) m.resize(T_ * B * s.max_p_, false);
      if (s.zoneout_ > T(0)) {
        fill(zone, T_ * B * s.max_p_, s.zoneout_);
        if (s.info_->cell_state) fill(zone_c, T_ * B * mh, s.zoneout_);
      }
    }
    static void fill(Buffer<T>& buf, i64 n, T value) {
      buf.resize(n, false);
      for (i64 i = 0; i < n; ++i) buf.get()[i] = value;
    }
  };

  struct Busy {
    std::atomic<bool>& flag;
    explicit Busy(std::atomic<bool>& f) : flag(f) {
      if (flag.exchange(true))
        throw std::runtime_error(
            "stream: used from two threads at once; give each thread its "
            "own stream (layer.stream())");
    }
    ~Busy() { flag.store(false); }
  };

  // Runs every layer over x[T, B, I] from the carried state into y[T, B, P]; advances it.
  // Called without the GIL.
  void advance(const T* x, T* y, i64 T_, Scratch& s) {
    const KernelTable& table = current_table();
    const Kernels<T>& k = table.of<T>();
    const int nth = get_num_threads();
    // The panel width and K blocking of the GEMM are run-time parameters (gemm_params.h) that
    // tests may change between calls: panels packed for others are packed again.
    const GemmParams params = gemm_tuning(table.name).get(static_cast<int>(sizeof(T)));
    const T* in = x;
    const size_t L = layers_.size();
    for (size_t ell = 0; ell < L; ++ell) {
      Layer& lay = layers_[ell];
      FwdArgs<T> a = lay.a;
      a.d.T = T_;
      a.n_threads = nth;
      if (lay.packed_by != &table || lay.ws_threads < nth ||
          !same_params(lay.packed_params, params)) {  // first call, or a new layout
        const i64 n = k.fwd_workspace(a);
        if (n > lay.ws.size()) lay.ws.resize(n, false);
        lay.packed_by = nullptr;
        lay.ws_threads = nth;
      }
      const i64 B = a.d.B, P = a.d.P, H = a.d.H;
      a.packed = lay.packed_by != nullptr;
      if constexpr (std::is_same_v<T, float>) {
        if (bf16_) {
          const i64 GH = a.d.G * a.d.H;
          if (lay.w16_by != &table) {  // bf16.h panels: their width is the target's
            lay.w16[0].resize(table.bf16_size(GH, a.d.I), false);
            lay.w16[1].resize(table.bf16_size(GH, a.d.P), false);
            table.pack_bf16(lay.w16[0].get(), a.w_ih, GH, a.d.I);
            table.pack_bf16(lay.w16[1].get(), a.w_hh, GH, a.d.P);
            lay.w16_by = &table;
          }
          a.w_ih16 = lay.w16[0].get();
          a.w_hh16 = lay.w16[1].get();
        }
      }
      a.x = in;
      a.h0 = h_.get() + h_off_[ell];
      a.c0 = info_->cell_state ? c_.get() + c_off_[ell] : nullptr;
      a.y = ell + 1 == L ? y : s.mid[ell & 1].get();
      a.h = s.h.get();
      a.c = info_->cell_state ? s.c.get() : nullptr;
      a.gates = s.gates.get();
      a.hn = info_->hn_cache ? s.hn.get() : nullptr;
      a.clip_mask = clip_ ? s.mask.get() : nullptr;
      if (zoneout_ > T(0)) {
        a.zoneout = s.zone.get();
        a.zoneout_c = info_->cell_state ? s.zone_c.get() : nullptr;
      }
      a.ih_hat = a.ln_ih ? s.ih_hat.get() : nullptr;
      a.hh_hat = a.ln_hh ? s.hh_hat.get() : nullptr;
      a.c_hat = a.ln_c ? s.c_hat.get() : nullptr;
      a.ln_rstd = a.ln_ih || a.ln_hh || a.ln_c ? s.ln_rstd.get() : nullptr;
      k.fwd(a, lay.ws.get());
      lay.packed_by = &table;
      lay.packed_params = params;
      std::memcpy(h_.get() + h_off_[ell], a.h + T_ * B * P, sizeof(T) * B * P);
      if (a.c) std::memcpy(c_.get() + c_off_[ell], a.c + T_ * B * H, sizeof(T) * B * H);
      in = a.y;
    }
  }

  // An exact ndarray of the stream's dtype, C-contiguous, of this shape.
  bool good(const py::object& obj, std::initializer_list<i64> shape) const {
    if (!py::isinstance<py::array>(obj)) return false;
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (static_cast<size_t>(a.ndim()) != shape.size()) return false;
    py::ssize_t i = 0;
    for (i64 n : shape)
      if (a.shape(i++) != n) return false;
    if (!(a.flags() & py::array::c_style)) return false;
    PyObject* descr = reinterpret_cast<PyObject*>(py::detail::array_proxy(a.ptr())->descr);
    return descr == dtype_.ptr() || a.dtype().equal(dtype_);
  }

  void copy_state(const py::object& v, const char* name, T* dst, i64 n,
                  std::initializer_list<i64> shape) {
    if (v.is_none()) {
      std::memset(dst, 0, sizeof(T) * n);
      return;
    }
    if (!good(v, shape))
      throw py::value_error(
          std::string(name) +
          ": expected a C-contiguous array of the stream's dtype and state shape, got " +
          describe(v));
    std::memcpy(dst, py::reinterpret_borrow<py::array>(v).data(), sizeof(T) * n);
  }

  py::object slow_check_;  // Python callable: x_t -> a checked array, or raises
  py::dtype dtype_;
  const CellInfo* info_ = nullptr;
  std::vector<Layer> layers_;
  std::vector<i64> h_off_, c_off_;  // layer ell's state starts at h_ + h_off_[ell]
  i64 h_total_ = 0, c_total_ = 0, B_ = 0, I_ = 0, P_ = 0, max_p_ = 0;
  bool clip_ = false;
  bool ln_ = false;    // some layer has a layer norm
  bool bf16_ = false;  // w_ih and w_hh read as bfloat16 panels
  T zoneout_ = T(0);   // the zoneout rate of h (and c), 0: none
  Buffer<T> h_, c_;  // the carried state: h [L, B, P], c [L, B, H]
  Scratch step_scratch_;  // the driver's outputs for one step
  Scratch run_scratch_;   // and for the longest run so far (run_steps_ steps)
  i64 run_steps_ = 0;
  std::atomic<bool> busy_{false};
};

class Stream {
 public:
  Stream(Cell cell, const py::list& layers, i64 batch_size, bool input_forget,
         bool linear_before_reset, double clip, bool bf16, double zoneout, py::object slow_check) {
    if (layers.size() < 1 || !py::isinstance<py::tuple>(layers[0]) ||
        py::reinterpret_borrow<py::tuple>(layers[0]).size() < 1 ||
        !py::isinstance<py::array>(py::reinterpret_borrow<py::tuple>(layers[0])[0]))
      throw py::type_error(
          "layers: expected a list of (w_ih, w_hh, b_ih, b_hh, w_peep, w_proj[, ln_ih, ln_hh, "
          "ln_c])");
    py::array w = py::reinterpret_borrow<py::array>(
        py::reinterpret_borrow<py::tuple>(layers[0])[0]);
    if (w.dtype().equal(py::dtype::of<float>()))
      impl_.reset(new StreamImpl<float>(cell, layers, batch_size, input_forget, linear_before_reset,
                                        clip, bf16, zoneout, std::move(slow_check)));
    else if (w.dtype().equal(py::dtype::of<double>()))
      impl_.reset(new StreamImpl<double>(cell, layers, batch_size, input_forget,
                                         linear_before_reset, clip, bf16, zoneout,
                                         std::move(slow_check)));
    else
      throw py::type_error("w_ih: expected dtype float32 or float64, got " +
                           std::string(py::str(w.dtype())));
  }
  StreamBase& impl() { return *impl_; }

 private:
  std::unique_ptr<StreamBase> impl_;
};

}  // namespace

void bind_stream(py::module_& m) {
  py::class_<Stream>(m, "Stream",
                     "A stack of layers with weights packed once, stepped with the state kept "
                     "inside (private: use layer.stream()).")
      .def(py::init<Cell, const py::list&, i64, bool, bool, double, bool, double, py::object>(),
           py::arg("cell"), py::arg("layers"), py::arg("batch_size"),
           py::arg("input_forget") = false, py::arg("linear_before_reset") = true,
           py::arg("clip") = 0.0, py::arg("bfloat16") = false, py::arg("zoneout") = 0.0,
           py::arg("slow_check"))
      .def(
          "step",
          [](Stream& s, const py::object& x, const py::object& out) {
            return s.impl().step(x, out);
          },
          py::arg("x_t"), py::arg("out") = py::none(),
          "x_t [B, I] -> y_t [B, P] (into out when given); advances the state.")
      .def(
          "run", [](Stream& s, const py::object& x) { return s.impl().run(x); }, py::arg("x"),
          "x [T, B, I] (C-contiguous) -> y [T, B, P]; advances the state.")
      .def(
          "state", [](const Stream& s) { return const_cast<Stream&>(s).impl().state(); },
          "(h [L, B, P], c [L, B, H] or None): copies.")
      .def(
          "set_state",
          [](Stream& s, const py::object& h, const py::object& c) { s.impl().set_state(h, c); },
          py::arg("h"), py::arg("c"), "Copies h (and c) in; None is zeros.");
}

}  // namespace rnnkit
