"Publishing one model folder into the hub cache from several processes at once (nbdev_test runs notebooks in parallel)."
import multiprocessing as mp
from pathlib import Path

from biovita_nb.hub import to_hub_cache
def _publish(args):
    folder, cache, n = args
    return [to_hub_cache(folder, "biovita-toy/concurrency", cache) for _ in range(n)]


def test_concurrent_publishers_do_not_collide(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for i in range(20): (folder / f"part{i}.bin").write_bytes(bytes([i]) * 50_000)
    cache = tmp_path / "hub"
    with mp.get_context("spawn").Pool(2) as pool:
        commits = pool.map(_publish, [(folder, cache, 15)] * 2)
    assert len({c for run in commits for c in run}) == 1              # content-addressed: one commit
    snap = cache / "models--biovita-toy--concurrency" / "snapshots" / commits[0][0]
    assert sorted(p.name for p in snap.iterdir()) == sorted(p.name for p in folder.iterdir())
    assert not [p for p in snap.parent.iterdir() if p.name.startswith(".")]   # no temp folders left behind
