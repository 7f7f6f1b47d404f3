"""Whether a backend runs the cell options of API.md section 11 (layer norm, zoneout,
recurrent mask, resets), probed once by a tiny call of each cell with every option: the
tests of the layers, rnnkit.torch and the char LM on them skip, saying so, where it does not
(the native kernels land after the reference)."""

import functools

import numpy as np

import rnnkit
import rnnkit.reference

_G = {"rnn": 1, "lstm": 4, "gru": 3}


@functools.lru_cache(maxsize=None)
def has_options(backend):
    f = rnnkit.reference if backend == "reference" else rnnkit
    T, B, I, H = 2, 1, 2, 2
    z = np.zeros
    for cell, G in _G.items():
        kw = dict(
            ln_ih=np.ones((2, G * H)),
            ln_hh=np.ones((2, G * H)),
            zoneout=z((T, B, H)),
            recurrent_mask=np.ones((B, H)),
            resets=z((T, B), bool),
        )
        if cell == "lstm":
            kw.update(ln_c=np.ones((2, H)), zoneout_c=z((T, B, H)))
        try:
            out = getattr(f, f"{cell}_forward")(z((T, B, I)), z((G * H, I)), z((G * H, H)), **kw)
            getattr(f, f"{cell}_backward")(out.cache, np.ones((T, B, H)))
        except (TypeError, NotImplementedError):
            return False
    return True


NO_OPTIONS = "the {} backend has no section-11 options yet (h/opts-kernels)"
