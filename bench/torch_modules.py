"""Training-step time of rnnkit.torch.LSTM / GRU / RNN against torch.nn's in a small model,
side by side in one run (the same as ``rnnkit bench --torch-modules``; the code and its
description are in python/rnnkit/torch/bench.py).

    python bench/torch_modules.py [--cells lstm gru rnn] [--batch 1 8 64] [--hidden 64 256]
                                  [--T 50] [--repeat 7] [--threads 1] [--dtype float32]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from rnnkit.torch import bench  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_arguments(parser)
    sys.exit(bench.main(parser.parse_args()))
