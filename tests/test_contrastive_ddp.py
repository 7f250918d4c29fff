"Two gloo processes with gathered embeddings give the single-process gradient step of the same global batch."
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from biovita_nb.contrastive import clip_loss, ddp_loss_scale, gather_with_grad

sys.path.insert(0, str(Path(__file__).parent))
from gloo import run_gloo

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


def worker(rank, world, out):
    model = nn.parallel.DistributedDataParallel(make_model())
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    n = GLOBAL_BATCH // world
    for step in range(STEPS):
        x, y, labels = data(step)
        sl = slice(rank * n, (rank + 1) * n)
        opt.zero_grad(); loss_on(model, x[sl], y[sl], labels).backward(); opt.step()
    if rank == 0: torch.save(model.module.state_dict(), out)


def test_two_gloo_ranks_match_one_process(tmp_path):
    out = tmp_path / "ddp.pt"
    run_gloo(worker, 2, str(out))
    ddp, ref = torch.load(out), single_process()
    for k in ref:
        # float32 all-reduce sums in another order than one process: allow rounding, nothing more
        torch.testing.assert_close(ddp[k], ref[k], rtol=0, atol=1e-6)
    assert not torch.equal(ref["a.weight"], make_model().state_dict()["a.weight"])   # training moved the weights
