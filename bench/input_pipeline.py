"""Training input pipeline: 10 s, 48 kHz random crops from prepared shards vs from the original files.

A synthetic corpus of short clips (noise and tones, 1-8 s, encoded as FLAC, Ogg Vorbis, MP3 and WAV at
16-48 kHz; a pool of distinct encodings copied under every item's file name, so writing 10k files is quick)
is prepared once with `prepare_audio`; then, in one process with one torch thread:
  shards:    `PreparedAudio.crop` (memory-mapped int16 PCM, only the crop's bytes read);
  originals: `audio_clip(path, crop="random")` (decode + resample the whole file, what the datasets do today);
clips/s per core for each, their ratio, and disk bytes per hour of audio for the shards and the originals.
Then, in fresh processes (best of 3) per corpus size, the time to the first batch (32 clips, species-balanced sampler,
DataLoader) and the peak RSS, at 10k clips and at 100k (the 100k store is the 10k shards linked ten times
under new shard numbers and ids: preparing 100k clips from scratch would need ~45 GB of disk), and the ratios.
Timings are with the shards and originals in the page cache (a second read), on this machine's disk.

    python bench/input_pipeline.py [--clips 10000] [--big 100000] [--crops 2000] [--workers 2] [--out DIR]
    python bench/input_pipeline.py --quick       # 600 clips, 6000 linked, 300 crops
With --out DIR the corpus and shards are kept there, and a rerun reuses the shards (prepare_audio resumes).
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from biovita_nb.core import load_json, save_json
from biovita_nb.corpus import read_corpus
from biovita_nb.media import AudioConfig
from biovita_nb.sampling import audio_clip, collate_items, item_generator
from biovita_nb.testing import fixture_world, write_corpus_metadata
from biovita_nb.prepare import PreparedAudio, PreparedAudioDataset, prepare_audio

KINDS = (("flac", 22_050, "PCM_16"), ("ogg", 48_000, "VORBIS"), ("mp3", 44_100, "MPEG_LAYER_III"),
         ("wav", 16_000, "PCM_16"), ("flac", 32_000, "PCM_24"), ("mp3", 24_000, "MPEG_LAYER_III"))


def synthetic_corpus(root: Path, n_clips: int, pool: int = 96, seed: int = 0) -> Path:
    "A corpus of `n_clips` training clips over `n_clips // 20` species (files: copies of a pool of encodings)."
    n_species = max(n_clips // 20, 1)
    species, audio, image = fixture_world(n_families=1, genera_per_family=n_species, species_per_genus=1, n_unseen=0,
                                          n_items=(-(-n_clips // n_species), 0), seed=seed)
    audio = audio.iloc[:n_clips].copy()
    rng, blobs = np.random.default_rng(seed), []
    for k in range(pool):
        ext, sr, sub = KINDS[k % len(KINDS)]
        t = np.arange(int(sr * rng.uniform(1, 8))) / sr
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(300, 4000) * t) * (t > rng.uniform(0, 0.5)) + 0.05 * rng.standard_normal(len(t))
        p = root / "pool" / f"{k}.{ext}"; p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, x.astype(np.float32), sr, subtype=sub)
        blobs.append((ext, p.read_bytes(), sf.info(p).duration))
    names, seconds = [], 0.0
    for i, fn in enumerate(audio.file_name):
        ext, data, dur = blobs[i % pool]
        name = fn.rsplit(".", 1)[0] + "." + ext
        (root / name).parent.mkdir(parents=True, exist_ok=True); (root / name).write_bytes(data)
        names.append(name); seconds += dur
    audio["file_name"] = names
    write_corpus_metadata(root, species, audio, image.iloc[:0])
    save_json(root / "seconds.json", dict(seconds=seconds))
    return root


def rate(fn, n: int) -> float:
    "Calls per second of `fn(k)` over k < n (after one warm-up pass over the same k)."
    for k in range(min(n, 50)): fn(k)
    t = time.perf_counter()
    for k in range(n): fn(k)
    return n / (time.perf_counter() - t)


def link_copies(src: Path, dst: Path, copies: int) -> Path:
    "A prepared store of `copies` x the clips of `src`: its shards linked under new numbers, ids offset."
    meta, idx = load_json(src / "prepare.json"), pd.read_parquet(src / "index.parquet")
    n, step = meta["n_shards"], int(idx.id.max()) + 1
    dst.mkdir(parents=True, exist_ok=True); parts = []
    for c in range(copies):
        for k in range(n): os.symlink(src / f"audio-train-{k:06d}.tar", dst / f"audio-train-{c * n + k:06d}.tar")
        parts.append(idx.assign(id=idx.id + c * step, shard=idx.shard + c * n, species_index=idx.species_index + c * step))
    pd.concat(parts).to_parquet(dst / "index.parquet", index=False)
    save_json(dst / "prepare.json", {**meta, "n_shards": n * copies, "n_items": meta["n_items"] * copies,
                                     "n_prepared": len(idx) * copies})
    return dst


def peak_rss_mib() -> float:
    "This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def first_batch(store: str) -> None:
    "Child process: open the store, plan the epoch, take one batch; print seconds of each and peak RSS (MiB) as JSON."
    t0 = time.perf_counter()
    ds = PreparedAudioDataset(PreparedAudio(store), seed=0)
    t1 = time.perf_counter()
    smp = ds.balanced_sampler(seed=0); smp.set_epoch(0)
    plan = [(0, int(i)) for i in smp.rank_plan()]                 # what iterating `smp` yields
    it = iter(torch.utils.data.DataLoader(ds, batch_size=32, sampler=plan, collate_fn=collate_items))
    t2 = time.perf_counter()
    b = next(it)
    t3 = time.perf_counter()
    assert b["audio"].shape == (32, 480_000)
    print(json.dumps(dict(seconds=t3 - t0, open=t1 - t0, plan=t2 - t1, batch=t3 - t2, rss_mib=peak_rss_mib())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=10_000); ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--crops", type=int, default=2000); ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None); ap.add_argument("--quick", action="store_true")
    ap.add_argument("--first-batch", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.first_batch: return first_batch(args.first_batch)
    if args.quick: args.clips, args.big, args.crops = 600, 6000, 300
    work = Path(args.out or tempfile.mkdtemp(prefix="bench_input_"))
    t = time.perf_counter(); root = synthetic_corpus(work / "corpus", args.clips)
    corpus = read_corpus(root, check_files=False)
    print(f"corpus: {args.clips} clips, {load_json(root / 'seconds.json')['seconds'] / 3600:.2f} h, written in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter(); prepare_audio(corpus, work / "prepared", per_shard=1000, workers=args.workers)
    print(f"prepare_audio ({args.workers} workers): {time.perf_counter() - t:.1f} s")
    pa, items = PreparedAudio(work / "prepared"), corpus.items("audio", "train")
    paths, ids = [str(corpus.path(f)) for f in items.file_name], items.id.to_numpy()
    pick = np.random.default_rng(1).integers(0, len(pa), args.crops)
    assert (pa.ids == ids).all()
    shards = rate(lambda k: pa.crop(int(pick[k]), 0, 0), args.crops)
    n_orig = max(args.crops // 10, 50)
    orig = rate(lambda k: audio_clip(paths[pick[k]], AudioConfig(), "random", item_generator(0, 0, ids[pick[k]])), n_orig)
    print(f"random 10 s crops, 1 core: shards {shards:.0f} clips/s, originals {orig:.1f} clips/s, ratio {shards / orig:.1f}x")
    hours = load_json(root / "seconds.json")["seconds"] / 3600
    size = lambda ps: sum(p.stat().st_size for p in ps)
    sh, og = size((work / "prepared").glob("*.tar")), size(corpus.path(f) for f in items.file_name)
    print(f"disk per hour of audio: shards {sh / hours / 2**20:.0f} MiB, originals {og / hours / 2**20:.0f} MiB, ratio {sh / og:.1f}x")
    shutil.rmtree(work / "prepared_big", ignore_errors=True)
    big = link_copies(work / "prepared", work / "prepared_big", args.big // args.clips)
    runs = {}
    for name, store in ((args.clips, work / "prepared"), (len(PreparedAudio(big)), big)):
        tries = [json.loads(subprocess.run([sys.executable, __file__, "--first-batch", str(store)], capture_output=True, text=True,
                                           check=True).stdout.strip().splitlines()[-1]) for _ in range(3)]
        runs[name] = min(tries, key=lambda r: r["seconds"])        # best of 3 fresh processes (the first warms the page cache)
        r = runs[name]
        print(f"{name} clips: first batch {r['seconds']:.2f} s (open index {r['open']:.2f}, balanced epoch plan {r['plan']:.2f}, "
              f"32 crops {r['batch']:.3f}), peak RSS {r['rss_mib']:.0f} MiB")
    (a, ra), (b, rb) = runs.items()
    print(f"{b} vs {a} clips: first batch {rb['seconds'] / ra['seconds']:.2f}x (32 crops {rb['batch'] / ra['batch']:.2f}x), "
          f"peak RSS {rb['rss_mib'] / ra['rss_mib']:.2f}x")
    if not args.out: shutil.rmtree(work)


if __name__ == "__main__":
    main()
