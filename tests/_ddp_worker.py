"""One rank of the DistributedDataParallel test (tests/test_torch_ddp.py), also importable
for the one-process run: a small rnnkit.torch model, a few SGD steps, the parameters saved.

    python tests/_ddp_worker.py RANK WORLD_SIZE PORT OUT.npz
"""

import gc
import sys

import numpy as np
import torch

T, B, I, H, STEPS = 5, 4, 3, 6, 3


class Model(torch.nn.Module):
    def __init__(self, cell):
        super().__init__()
        import rnnkit.torch as rkt

        cls = {"lstm": rkt.LSTM, "gru": rkt.GRU}[cell]
        self.rnn = cls(I, H, 2, batch_first=True, dtype=torch.float64)
        self.head = torch.nn.Linear(H, 2, dtype=torch.float64)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y[:, -1])


def data():
    g = torch.Generator().manual_seed(3)
    return (
        torch.randn(B, T, I, generator=g, dtype=torch.float64),
        torch.randn(B, 2, generator=g, dtype=torch.float64),
    )


def train(cell, rank=0, world=1, wrap=lambda m: m):
    """The parameters (name -> array) after STEPS SGD steps on this rank's share of one batch."""
    torch.manual_seed(0)
    model = Model(cell)
    net = wrap(model)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    x, y = data()
    b = B // world
    x, y = x[rank * b : (rank + 1) * b], y[rank * b : (rank + 1) * b]
    for _ in range(STEPS):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    return {f"{cell}.{n}": p.detach().numpy().copy() for n, p in model.named_parameters()}


def main(rank, world, port, out):
    import datetime

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),
    )
    params = {}
    for cell in ("lstm", "gru"):
        params.update(train(cell, rank, world, DistributedDataParallel))
    # The DDP wrappers hold the group: free them (they sit in reference cycles) and wait for
    # the other rank before taking the group down, else gloo may abort this one at exit.
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
    np.savez(out, **params)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
