"""Real-size training steps on a GPU: steps/s, GPU utilisation, and whether the input keeps up.

BioVITA is built from real-size towers with random weights (open_clip ViT-L-14 and the default HTS-AT
`ClapConfig`), the small toy world's training clips are prepared once into int16 shards, and each stage
trains with the paper's settings (batch per GPU, autocast dtype, DataLoader workers reading crops
ahead) for `--steps` steps. Printed per stage, all measured in this one run:
  steps/s and clips/s trained (after `--warmup` steps);
  GPU utilisation: the mean of `nvidia-smi` samples taken every 0.2 s while it trains;
  input: the crops/s the same workers serve with no model at all, and its ratio to the clips/s
         training consumes (above 1: the input keeps up).
Usage: python bench/gpu_train.py [--steps 30] [--warmup 5] [--workers 8] [--amp-dtype float16]
       [--device cuda] [--batch 64]; `--device cpu --steps 2 --batch 2 --workers 0` checks it runs.
"""
import argparse, copy, dataclasses, subprocess, tempfile, threading, time
from pathlib import Path

import numpy as np
import open_clip
import torch
from transformers import ClapConfig, ClapModel

from biovita_nb.contrastive import epoch_batches
from biovita_nb.core import for_preset
from biovita_nb.corpus import read_corpus
from biovita_nb.frontend import ClapFrontEnd
from biovita_nb.model import BioVITA
from biovita_nb.prepare import AudioFeatureSource, prepare_audio
from biovita_nb.sampling import balanced_epoch
from biovita_nb.toydesign import ToyWorldConfig
from biovita_nb.toyworld import make_toyworld
from biovita_nb.train import Stage1Config, Stage2Config, TrainingSet, train_stage1, train_stage2


class Enough(Exception): "Raised from `on_step` once the timed steps are done."


def gpu_utilisation(stop: threading.Event, samples: list):
    while not stop.is_set():
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5).stdout.split()
            if out: samples.append(float(out[0]))
        except (OSError, subprocess.TimeoutExpired, ValueError): return
        stop.wait(0.2)


def timed(train, steps: int, warmup: int) -> dict:
    "Run `train(on_step)` until `warmup + steps` steps; steps/s over the last `steps`, and the GPU utilisation meanwhile."
    stamps, samples, stop = [], [], threading.Event()
    def on_step(step, logs):
        if torch.cuda.is_available(): torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        if len(stamps) == warmup + 1: threading.Thread(target=gpu_utilisation, args=(stop, samples), daemon=True).start()
        if len(stamps) > warmup + steps: raise Enough
    try: train(on_step)
    except Enough: pass
    finally: stop.set()
    if len(stamps) <= warmup + 1: raise SystemExit(f"only {len(stamps)} steps ran: use a larger world or fewer --warmup steps")
    t = np.asarray(stamps[warmup:])
    return dict(steps_per_s=(len(t) - 1) / (t[-1] - t[0]), gpu_util=float(np.mean(samples)) if samples else float("nan"))


def input_only(data: TrainingSet, batch: int, workers: int, n_batches: int) -> float:
    "Crops/s that `workers` DataLoader processes serve from the shards with no model at all."
    src = AudioFeatureSource(data.corpus, data.audio, ClapFrontEnd(), prepared=data.prepared)
    plan = np.resize(balanced_epoch(data.audio.species_index.to_numpy(), 0, 0), batch * n_batches)
    batches = [dict(rows=plan[i:i + batch]) for i in range(0, len(plan), batch)]
    t0 = time.perf_counter()
    for _ in epoch_batches(batches, 0, lambda b: dict(crops=src.crops(b["rows"], 0)), workers, pin_memory=torch.cuda.is_available()):
        pass
    return batch * n_batches / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30); ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--workers", type=int, default=8); ap.add_argument("--amp-dtype", default="float16")
    ap.add_argument("--device", default="cuda"); ap.add_argument("--batch", type=int, default=None)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gpu_train_"))
    corpus = read_corpus(make_toyworld(tmp / "world", ToyWorldConfig.small(), progress=False).root)
    prepare_audio(corpus, tmp / "shards", workers=a.workers or 1)
    data = TrainingSet.from_corpus(corpus, prepared=tmp / "shards")
    oc = open_clip.create_model("ViT-L-14")                        # random weights, BioCLIP 2's architecture
    tok, pre = open_clip.get_tokenizer("ViT-L-14"), open_clip.image_transform(oc.visual.image_size, is_train=False)
    base = BioVITA.from_pretrained_parts(oc, ClapModel(ClapConfig()), seed=0)   # the default HTS-AT ClapConfig
    print(f"device {a.device} ({torch.cuda.get_device_name() if a.device == 'cuda' else 'cpu'}), {len(data.audio)} clips, "
          f"{sum(p.numel() for p in base.parameters()) / 1e6:.0f}M parameters, amp {a.amp_dtype}, {a.workers} workers")
    common = dict(amp_dtype=a.amp_dtype, loader_workers=a.workers)
    cfg1 = for_preset(Stage1Config, "paper", epochs=10_000, **common)
    cfg2 = for_preset(Stage2Config, "paper", phase1_epochs=10_000, **common)
    if a.batch: cfg1, cfg2 = (dataclasses.replace(c, batch_size_per_device=a.batch) for c in (cfg1, cfg2))
    runs = {"stage 1": (cfg1.batch_size_per_device, lambda cb: train_stage1(copy.deepcopy(base), tok, data, cfg1, tmp / "s1",
                                                                           device=a.device, ckpt_every=10**9, on_step=cb)),
            "stage 2 (phase 1)": (cfg2.batch_size_per_device, lambda cb: train_stage2(
                copy.deepcopy(base), tok, pre, data, cfg2, tmp / "s2", device=a.device, ckpt_every=10**9, on_step=cb))}
    for name, (batch, train) in runs.items():
        r = timed(train, a.steps, a.warmup)
        served = input_only(data, batch, a.workers, n_batches=max(a.steps, 4))
        used = r["steps_per_s"] * batch
        print(f"{name}: {r['steps_per_s']:.2f} steps/s = {used:.0f} clips/s (batch {batch}); GPU utilisation "
              f"{r['gpu_util']:.0f}%; input alone {served:.0f} crops/s = {served / used:.1f}x what training consumes")


if __name__ == "__main__":
    main()
