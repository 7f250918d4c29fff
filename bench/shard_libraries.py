"""Shard formats with indexed random access, read speed on one workload: the 10 s random training crop.

The same synthetic clips (bench/input_pipeline.py's corpus), decoded once to 48 kHz int16, stored by:
  ours:    `prepare_audio` (WebDataset-layout tar, raw PCM members, byte offsets in index.parquet, np.memmap);
  wids:    webdataset 0.2.x's indexed reader `wids.ShardListDataset` over the same tar files (whole member read);
  litdata: `litdata.optimize` chunks read by `litdata.StreamingDataset[i]` (whole item read);
then clips/s of crops at random positions, one process, one torch thread. wids is not in webdataset 1.x
(this project's pin) and litdata is not a dependency: install them beside, without touching the venv:
    pip install --no-deps --target /tmp/prep_wids "webdataset<1"
    pip install --no-deps --target /tmp/prep_lit litdata==0.2.76 lightning-utilities obstore boto3 botocore s3transfer jmespath tifffile
    PYTHONPATH=.:/tmp/prep_lit python bench/shard_libraries.py --wids /tmp/prep_wids [--clips 2000]
A library that does not import is reported and left out. (MosaicML streaming 0.13.0 cannot be installed
beside this project's lock: it requires numpy<2.2 and transformers<5.)
"""
import argparse, shutil, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from input_pipeline import rate, synthetic_corpus
from biovita_nb.corpus import read_corpus
from biovita_nb.prepare import PreparedAudio, prepare_audio
from biovita_nb.sampling import item_generator


def crop_of(x: np.ndarray, scale: float, item_id: int, n: int = 480_000) -> torch.Tensor:
    "The training crop of a whole stored clip (the rule of `PreparedAudio.crop`)."
    start = int(torch.randint(0, max(len(x) - n, 0) + 1, (), generator=item_generator(0, 0, item_id)))
    out = torch.zeros(n); w = x[start:start + n]
    out[:len(w)] = torch.from_numpy(w.astype(np.float32) * np.float32(scale))
    return out


_PA = None
def _lit_item(i: int) -> dict:
    "One prepared clip as a litdata item (int16 samples, scale, id)."
    x = _PA.samples(i)
    return dict(pcm=np.round(x / _PA._scale[i]).astype(np.int16), scale=float(_PA._scale[i]), id=int(_PA.ids[i]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=2000); ap.add_argument("--crops", type=int, default=1000)
    ap.add_argument("--wids", default=None, help="folder holding webdataset 0.2.x's `wids` (appended to sys.path)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench_shards_"))
    corpus = read_corpus(synthetic_corpus(work / "corpus", args.clips), check_files=False)
    prepare_audio(corpus, work / "ours", per_shard=500, workers=2)
    pa = PreparedAudio(work / "ours")
    pick = np.random.default_rng(1).integers(0, len(pa), args.crops)
    res = {"ours": rate(lambda k: pa.crop(int(pick[k]), 0, 0), args.crops)}
    ref = [pa.crop(int(p), 0, 0) for p in pick[:20]]
    if args.wids: sys.path.append(args.wids)
    try:
        import wids
        shards = [dict(url=str(work / "ours" / f"audio-train-{k:06d}.tar"), nsamples=int((pa.index.shard == k).sum()))
                  for k in range(pa.meta["n_shards"])]
        wd = wids.ShardListDataset(shards, transformations=[], cache_dir=str(work / "wids_cache"))   # it copies local shards there
        get = lambda k: crop_of(np.frombuffer(wd[int(pick[k])][".pcm"].read() if hasattr(wd[int(pick[k])][".pcm"], "read")
                                              else wd[int(pick[k])][".pcm"], "<i2"), pa._scale[pick[k]], int(pa.ids[pick[k]]))
        assert all(torch.equal(get(k), r) for k, r in enumerate(ref))
        res["wids"] = rate(get, args.crops)
    except ImportError as e: print(f"wids: not importable ({e})")
    try:
        import litdata
        global _PA; _PA = pa
        t = time.perf_counter()
        litdata.optimize(fn=_lit_item, start_method="fork", inputs=list(range(len(pa))), output_dir=str(work / "lit"), chunk_bytes="64MB", num_workers=1,
                         verbose=False, reorder_files=False)
        print(f"litdata.optimize of the prepared clips: {time.perf_counter() - t:.1f} s")
        ld = litdata.StreamingDataset(str(work / "lit"))
        get = lambda k: (lambda d: crop_of(d["pcm"], d["scale"], d["id"]))(ld[int(pick[k])])
        assert all(torch.equal(get(k), r) for k, r in enumerate(ref))
        res["litdata"] = rate(get, args.crops)
    except ImportError as e: print(f"litdata: not importable ({e})")
    for k, v in res.items(): print(f"{k:8s} {v:7.0f} crops/s  ({v / res['ours']:.2f}x ours)")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
