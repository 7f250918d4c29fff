"Two gloo processes with gathered embeddings give the single-process gradient step of the same global batch."
import os, socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from biovita_nb.contrastive import clip_loss, ddp_loss_scale, gather_with_grad
GLOBAL_BATCH, DIM, STEPS = 8, 6, 3


class Towers(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(DIM, 4, bias=False), nn.Linear(DIM, 4, bias=False)
    def forward(self, x, y): return F.normalize(self.a(x), dim=-1), F.normalize(self.b(y), dim=-1)


def make_model():
    torch.manual_seed(0)
    return Towers()


def data(step):
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(GLOBAL_BATCH, DIM, generator=g)
    return x, x + 0.3 * torch.randn(GLOBAL_BATCH, DIM, generator=g), torch.tensor([0, 0, 1, 2, 3, 3, 4, 5])


def loss_on(model, x, y, labels):
    za, zb = model(x, y)            # through DDP's forward, so its gradient hooks are armed
    return clip_loss(gather_with_grad(za), gather_with_grad(zb), 10.0, labels=labels) * ddp_loss_scale()


def single_process():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(STEPS):
        x, y, labels = data(step)
        opt.zero_grad(); loss_on(model, x, y, labels).backward(); opt.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = nn.parallel.DistributedDataParallel(make_model())
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        n = GLOBAL_BATCH // world
        for step in range(STEPS):
            x, y, labels = data(step)
            sl = slice(rank * n, (rank + 1) * n)
            opt.zero_grad(); loss_on(model, x[sl], y[sl], labels).backward(); opt.step()
        if rank == 0: torch.save(model.module.state_dict(), out)
        dist.barrier()              # no rank tears gloo down while its peer still talks to it
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def test_two_gloo_ranks_match_one_process(tmp_path):
    out = tmp_path / "ddp.pt"
    mp.spawn(worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    ddp, ref = torch.load(out), single_process()
    for k in ref:
        # float32 all-reduce sums in another order than one process: allow rounding, nothing more
        torch.testing.assert_close(ddp[k], ref[k], rtol=0, atol=1e-6)
    assert not torch.equal(ref["a.weight"], make_model().state_dict()["a.weight"])   # training moved the weights
