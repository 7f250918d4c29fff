"""A small world and untrained tiny models of the real architectures, for the training tests.

Run as a script it trains stage 1 into a folder (resuming if checkpoints exist) and saves the final
state dict: `python tests/train_fixtures.py WORLD_DIR RUN_DIR [--pause-at STEP]`.
"""
import sys, time
from pathlib import Path

import open_clip
import torch

from biovita_nb.hub import TOY_BIOCLIP_CFG, build_clap, build_open_clip, toy_clap_config, train_toy_tokenizer
from biovita_nb.model import BioVITA
from biovita_nb.corpus import read_corpus
from biovita_nb.toydesign import ToyWorldConfig
from biovita_nb.toyworld import make_toyworld
from biovita_nb.train import Stage1Config, TrainingSet, train_stage1
STAGE1 = dict(epochs=3, batch_size_per_device=8, lr=1e-3, positives="species")


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


def training_set(world_root):
    return TrainingSet.from_corpus(read_corpus(world_root))


def run_stage1(world_root, run_dir, pause_at=None, **overrides):
    torch.set_num_threads(1)
    model, tokenizer = tiny_biovita()
    progress = Path(run_dir) / "progress.txt"
    def on_step(step, logs):
        progress.write_text(str(step))
        if pause_at is not None and step >= pause_at: time.sleep(600)   # wait here to be killed
    res = train_stage1(model, tokenizer, training_set(world_root), Stage1Config(**{**STAGE1, **overrides}), run_dir,
                       ckpt_every=2, on_step=on_step)
    torch.save(model.state_dict(), Path(run_dir) / "final.pt")
    return res


if __name__ == "__main__":
    world, run = sys.argv[1], sys.argv[2]
    pause = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--pause-at" else None
    Path(run).mkdir(parents=True, exist_ok=True)
    run_stage1(world, run, pause_at=pause)
