"""What a rerun reads before it encodes: a feature store's ids and skip records, with and without the features.

`extract_features` asks the store which ids it holds and which it skipped (`FeatureStore.stored_ids`, `.skipped`) before
every run. Both read only each chunk's ids and metadata (`_read(path, features=False)`); reading the features too, as
`load` must, costs what this prints. One run, one process, ratios of times measured here.

    python bench/store_scan.py [--chunks 100] [--dim 768]
"""
import argparse, tempfile, time
from pathlib import Path

import torch
import torch.nn.functional as F
from biovita_nb.store import FeatureFingerprint, FeatureStore


def best(f, n=3):
    times = []
    for _ in range(n):
        t0 = time.perf_counter(); f(); times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100); ap.add_argument("--chunk-size", type=int, default=512)
    ap.add_argument("--dim", type=int, default=768)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        store = FeatureStore(Path(d), FeatureFingerprint.of("bench", "0", "w", "p"))
        for k in range(a.chunks):
            ids = range(k * a.chunk_size, (k + 1) * a.chunk_size)
            store.write_chunk("audio", ids, F.normalize(torch.randn(a.chunk_size, a.dim), dim=-1))
        paths = store.chunk_files("audio")
        full = best(lambda: [store._read(p) for p in paths])
        meta = best(lambda: [store._read(p, features=False) for p in paths])
        scan = best(lambda: (store.stored_ids("audio"), store.skipped("audio")))
        n = a.chunks * a.chunk_size
        print(f"{a.chunks} chunks x {a.chunk_size} items x {a.dim} dims ({n * a.dim * 4 / 2**20:.0f} MiB of features)")
        print(f"read ids + metadata + features: {full * 1e3:8.1f} ms")
        print(f"read ids + metadata only:       {meta * 1e3:8.1f} ms   ({full / meta:.1f}x less time)")
        print(f"stored_ids + skipped (a rerun's start): {scan * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
