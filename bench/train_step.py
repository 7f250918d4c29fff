"""Stage-1 training-step throughput: ours vs a step built like the released recipe.

Both steps train the same toy-size BioVITA (tiny open_clip BioCLIP-2 + tiny HTS-AT CLAP) on the same
batches of 10 s, 48 kHz toy-world clips with the same prompts, optimizer and loss. They differ where the
released scripts are slow:
  reference: `ClapFeatureExtractor` (numpy, per clip) inside the step, and the frozen text tower
             re-run on every batch's prompts;
  ours:      the batched torch CLAP front end on the training device, and prompt embeddings looked up
             in a `TextEmbeddingCache` built once;
  ours+memo: as ours, with the features of clips no longer than the 10 s window kept after their first
             use (what `train_stage1` does when it reads the corpus files; every toy clip qualifies). From
             prepared shards (the main job, the paper scale) nothing is kept: that is the `ours` row.
Decoding and resampling are done once, before timing, for all three. One run prints seconds per step
and the ratios.   Usage: python bench/train_step.py [--steps 6] [--batch 32] [--threads 2]
"""
import argparse, copy, time

import numpy as np
import open_clip
import torch

from biovita_nb.hub import TOY_BIOCLIP_CFG, build_clap, build_open_clip, toy_clap_config, train_toy_tokenizer
from biovita_nb import frontend
from biovita_nb.model import BioVITA
from biovita_nb.contrastive import TextEmbeddingCache, clip_loss
from biovita_nb.media import AudioConfig, load_audio, random_crop
from biovita_nb.sampling import item_seed
from biovita_nb.corpus import read_corpus
from biovita_nb.taxonomy import PromptSampler, training_prompts
from biovita_nb.toyworld import make_toyworld
from biovita_nb.train import TrainingSet, set_trainable
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=6); ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = TrainingSet.from_corpus(read_corpus(make_toyworld(progress=False).root))
    n = args.batch * (args.steps + 1)
    rows = data.audio.sample(n=n, replace=len(data.audio) < n, random_state=0).reset_index(drop=True)
    cfg = AudioConfig()
    waves = [random_crop(load_audio(data.corpus.path(f), cfg), cfg.num_samples, torch.Generator().manual_seed(item_seed(0, i)))
             for i, f in enumerate(rows.file_name)]
    sampler = PromptSampler(0)
    prompts = [sampler(data.taxa[int(s)], 0, int(i)) for s, i in zip(rows.species_index, rows.id)]
    batches = [(torch.stack(waves[i:i + args.batch]), prompts[i:i + args.batch]) for i in range(0, n, args.batch)]

    tok = train_toy_tokenizer(["the sound of a bird"] * 4, vocab_size=300)
    base = BioVITA.from_pretrained_parts(build_open_clip(TOY_BIOCLIP_CFG),
                                                build_clap(toy_clap_config(tok.vocab_size), tok).model)
    text_tokenizer = open_clip.get_tokenizer("ViT-B-32")
    fe_cfg = frontend.ClapFrontEndConfig()
    extractor, front_end = fe_cfg.feature_extractor(), frontend.ClapFrontEnd(fe_cfg)

    def make():
        m = copy.deepcopy(base).train(); set_trainable(m, ("clap_audio.", "audio_adapter.", "logit_scale."))
        return m, torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)

    def train_step(m, opt, feats, t):
        a = m.encode_audio(**feats)
        loss = clip_loss(a, t, m.logit_scale())
        opt.zero_grad(); loss.backward(); opt.step()

    def reference(m, opt, w, p):
        np.random.seed(0)
        x = extractor([c.numpy() for c in w], sampling_rate=48_000, return_tensors="pt")
        with torch.no_grad(): t = torch.nn.functional.normalize(m.oc_model.encode_text(text_tokenizer(p)), dim=-1)
        train_step(m, opt, dict(input_features=x["input_features"], is_longer=x["is_longer"]), t)

    def ours_factory(memo):
        m, opt = make()
        taxa = data.train_taxa()
        cache = TextEmbeddingCache.build(lambda b: m.encode_text(text_tokenizer(b)), [q for t in taxa for q in training_prompts(t)])
        kept = {}
        def step(m_, opt_, w, p, key):
            if memo and key in kept: feats = kept[key]
            else:
                with torch.no_grad(): feats = front_end(w)
                if memo: kept[key] = feats
            train_step(m, opt, feats, cache(p))
        return m, opt, step

    def timed(run):
        run(0)                                  # warm-up (also fills the memo, as epoch 1 would)
        t0 = time.perf_counter()
        for i in range(1, args.steps + 1): run(i)
        return (time.perf_counter() - t0) / args.steps

    m, opt = make()
    t_ref = timed(lambda i: reference(m, opt, *batches[i]))
    m1, opt1, s1 = ours_factory(memo=False)
    t_ours = timed(lambda i: s1(m1, opt1, *batches[i], i))
    m2, opt2, s2 = ours_factory(memo=True)
    # steady state: the memo holds every clip after the first epoch, so time a second pass over the same batches
    for i in range(args.steps + 1): s2(m2, opt2, *batches[i], i)
    t_memo = timed(lambda i: s2(m2, opt2, *batches[i], i))
    print(f"stage-1 step, batch {args.batch}, toy-size models, {args.threads} torch threads, {args.steps} steps each:")
    print(f"  reference (numpy extractor + text tower per batch): {t_ref:.3f} s/step")
    print(f"  ours (torch front end every step + cached prompt embeddings; train_stage1 from prepared shards):"
          f" {t_ours:.3f} s/step   ratio {t_ref / t_ours:.1f}x")
    print(f"  ours + feature memo (train_stage1 from the corpus files, clips <= 10 s):"
          f" {t_memo:.3f} s/step   ratio {t_ref / t_memo:.1f}x")


if __name__ == "__main__":
    main()
