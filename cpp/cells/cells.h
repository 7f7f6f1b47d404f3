// The one place that maps a cell kind (kinds.h) to its forward and backward step structs:
// with_cell<kFwd, T>(args, f) calls f(cell) with the cell of this call's kind and options,
// chosen once per call. The driver (sequence.h) is written against the cell contract of
// step.h and never asks which cell it runs.
#pragma once

#include "cells/gru.h"
#include "cells/lstm.h"
#include "cells/mgu.h"
#include "cells/rnn.h"

namespace rnnkit {
namespace RNNKIT_NS {

template <bool kFwd, class T, class Args, class F>
void with_cell(const Args& a, F&& f) {
  switch (a.cell) {
    case Cell::kRnnTanh: return with_rnn<kFwd, T>(a, false, f);
    case Cell::kRnnRelu: return with_rnn<kFwd, T>(a, true, f);
    case Cell::kLstm: return with_lstm<kFwd, T>(a, f);
    case Cell::kGru: return with_gru<kFwd, T>(a, f);
    case Cell::kMgu: return with_mgu<kFwd, T>(a, f);
  }
}

}  // namespace RNNKIT_NS
}  // namespace rnnkit
