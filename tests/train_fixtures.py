"""A small world and untrained tiny models of the real architectures, for the training tests.

Run as a script it trains a stage into a folder (resuming if checkpoints exist) and saves the final
state dict: `python tests/train_fixtures.py WORLD_DIR RUN_DIR [--pause-at STEP] [--stage stage2]
[--prepared SHARDS_DIR] [--workers N]`.
"""
import argparse, time
from pathlib import Path

import open_clip
import torch

from biovita_nb.hub import TOY_BIOCLIP_CFG, bioclip_transform, build_clap, build_open_clip, toy_clap_config, train_toy_tokenizer
from biovita_nb.model import BioVITA
from biovita_nb.corpus import read_corpus
from biovita_nb.toydesign import ToyWorldConfig
from biovita_nb.toyworld import make_toyworld
from biovita_nb.train import Stage1Config, Stage2Config, TrainingSet, train_stage1, train_stage2
STAGE1 = dict(epochs=3, batch_size_per_device=8, lr=1e-3, positives="species")
STAGE2 = dict(phase1_epochs=1, phase2_epochs=1, batch_size_per_device=8, audio_unfreeze_step=2, logit_scale_frozen_until=2,
              ramp_steps_ai=4, ramp_steps_it=2, baseline_steps=2)


def small_world(root):
    return make_toyworld(Path(root), ToyWorldConfig.small(), progress=False)


def tiny_biovita():
    "Untrained tiny BioCLIP-2-like open_clip model + tiny HTS-AT CLAP, seeded, without dropout."
    oc = build_open_clip(TOY_BIOCLIP_CFG, seed=0)
    tok = train_toy_tokenizer(["the sound of a bird calling"] * 4, vocab_size=300)
    cfg = toy_clap_config(tok.vocab_size)
    cfg.audio_config.hidden_dropout_prob = 0.0
    clap = build_clap(cfg, tok, seed=0)
    return BioVITA.from_pretrained_parts(oc, clap.model, seed=0), open_clip.get_tokenizer("ViT-B-32")


def training_set(world_root, prepared=None):
    return TrainingSet.from_corpus(read_corpus(world_root), prepared=prepared)


def run_stage(world_root, run_dir, pause_at=None, stage="stage1", prepared=None, workers=0, **overrides):
    "Train `stage` of a tiny BioVITA (stage 2 from the untrained model) into `run_dir`; the FitResult (stage 2: of phase 2)."
    torch.set_num_threads(1)
    model, tokenizer = tiny_biovita()
    progress = Path(run_dir) / "progress.txt"
    def on_step(step, logs):
        if stage == "stage2" and "gate" not in logs: return           # stage 2: count the steps of phase 2
        progress.write_text(str(step))
        if pause_at is not None and step >= pause_at: time.sleep(600)   # wait here to be killed
    data = training_set(world_root, prepared)
    if stage == "stage1":
        res = train_stage1(model, tokenizer, data, Stage1Config(**{**STAGE1, "loader_workers": workers, **overrides}), run_dir,
                           ckpt_every=2, on_step=on_step)
    else:
        cfg = Stage2Config(**{**STAGE2, "loader_workers": workers, **overrides})
        res = train_stage2(model, tokenizer, bioclip_transform(TOY_BIOCLIP_CFG), data, cfg, run_dir, ckpt_every=2,
                           on_step=on_step)["phase2"]
    torch.save(model.state_dict(), Path(run_dir) / "final.pt")
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("world"); ap.add_argument("run")
    ap.add_argument("--pause-at", type=int); ap.add_argument("--stage", default="stage1")
    ap.add_argument("--prepared"); ap.add_argument("--workers", type=int, default=0)
    a = ap.parse_args()
    Path(a.run).mkdir(parents=True, exist_ok=True)
    run_stage(a.world, a.run, pause_at=a.pause_at, stage=a.stage, prepared=a.prepared, workers=a.workers)
