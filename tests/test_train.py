"""Training: SIGKILL mid-epoch + resume is exact (stage 1 from files; stage 1 and stage 2 from prepared shards, read
ahead by DataLoader workers); two gloo ranks equal one process with the same global batch."""
import signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as fx
from biovita_nb.corpus import read_corpus
from biovita_nb.prepare import prepare_audio
from gloo import run_gloo

SCRIPT = Path(__file__).parent / "train_fixtures.py"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return fx.small_world(tmp_path_factory.mktemp("world") / "w").root


@pytest.fixture(scope="module")
def shards(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "audio"
    prepare_audio(read_corpus(world), out, per_shard=16)            # int16, as `biovita corpus prepare` writes
    return out


# (stage, read from shards, DataLoader workers, the step to kill at, the last checkpoint before it)
RUNS = {"stage1-files": ("stage1", False, 0, 5, 4), "stage1-shards-2workers": ("stage1", True, 2, 5, 4),
        "stage2-shards-2workers": ("stage2", True, 2, 3, 2)}


@pytest.mark.parametrize("run", list(RUNS))
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(world, shards, tmp_path, run):
    stage, from_shards, workers, kill_at, last_ckpt = RUNS[run]
    kw = dict(stage=stage, prepared=shards if from_shards else None, workers=workers)
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    ref_dir.mkdir(); run_dir.mkdir()
    fx.run_stage(world, ref_dir, **kw)
    args = ["--stage", stage, "--workers", str(workers)] + (["--prepared", str(shards)] if from_shards else [])
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(world), str(run_dir), "--pause-at", str(kill_at), *args])
    ckpt_dir = run_dir / ("ckpt" if stage == "stage1" else "phase2")
    deadline = time.time() + 300
    while time.time() < deadline:
        p = run_dir / "progress.txt"
        if ckpt_dir.exists() and p.exists() and p.read_text() and int(p.read_text()) >= kill_at: break
        assert proc.poll() is None, "the training process ended before it could be killed"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL); proc.wait()
    assert proc.returncode == -signal.SIGKILL
    ckpts = sorted(ckpt_dir.glob("step_*.pt"))
    assert ckpts and ckpts[-1].name == f"step_{last_ckpt:08d}.pt"    # the last checkpoint before the kill
    assert not (run_dir / "final.pt").exists()
    res = fx.run_stage(world, run_dir, **kw)                            # resume
    assert res.resumed_from == last_ckpt
    ref, resumed = torch.load(ref_dir / "final.pt"), torch.load(run_dir / "final.pt")
    assert ref.keys() == resumed.keys()
    for k in ref: assert torch.equal(ref[k], resumed[k]), k


def _ddp_worker(rank, world_size, world_root, run_dir):
    torch.set_num_threads(1)
    model, tokenizer = fx.tiny_biovita()
    wrap = lambda m: torch.nn.parallel.DistributedDataParallel(m)
    cfg = fx.Stage1Config(**{**fx.STAGE1, "epochs": 2, "batch_size_per_device": 8})
    fx.train_stage1(model, tokenizer, fx.training_set(world_root), cfg, Path(run_dir) / f"rank{rank}", wrap=wrap,
                    ckpt_every=1000)
    if rank == 0: torch.save(model.state_dict(), Path(run_dir) / "ddp.pt")


def _relative_update_difference(a: dict, b: dict, start: dict) -> float:
    "||a - b|| / ||b - start|| over all parameters: how far apart two runs' updates are."
    num = sum(((a[k] - b[k]).double() ** 2).sum() for k in b)
    den = sum(((b[k] - start[k]).double() ** 2).sum() for k in b)
    return float((num / den).sqrt())


def test_two_gloo_ranks_match_one_process(world, tmp_path):
    run_gloo(_ddp_worker, 2, str(world), str(tmp_path))
    torch.set_num_threads(1)
    def single(seed):
        model, tokenizer = fx.tiny_biovita()
        start = {k: v.clone() for k, v in model.state_dict().items()}
        cfg = fx.Stage1Config(**{**fx.STAGE1, "epochs": 2, "batch_size_per_device": 16, "seed": seed})  # same global batch
        res = fx.train_stage1(model, tokenizer, fx.training_set(world), cfg, tmp_path / f"single{seed}", ckpt_every=1000)
        assert res.step >= 4
        return model.state_dict(), start
    ref, start = single(0)
    ddp = torch.load(tmp_path / "ddp.pt")
    # AdamW turns float32 summation-order noise of the all-reduce into small update differences (measured: 0.4%);
    # a run that sees other data, the control below, differs by far more.
    assert _relative_update_difference(ddp, ref, start) < 0.02
    other, _ = single(1)
    assert _relative_update_difference(other, ref, start) > 0.3
