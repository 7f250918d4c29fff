"""The committed results are what the code computes: the main job, run again with the same seed, writes the very
tables and result files that `figures/` holds, and those were computed from a clean commit.

It runs the toy main job (about 20 s once the caches that `nbdev_test` builds are warm) in a fresh process."""
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures"


def test_committed_results_come_from_a_clean_commit():
    for f in sorted((FIGURES / "results").glob("results_*.json")):
        commit = json.loads(f.read_text())["provenance"]["git_commit"]
        assert commit and not commit.endswith("+dirty"), f"{f.name}: computed from {commit}; regenerate from a clean commit"


def test_main_job_reproduces_the_committed_tables(tmp_path):
    code = ("from biovita_nb.pipeline import MainJobConfig, run_main_job\n"
            f"run_main_job(MainJobConfig(out_dir={str(tmp_path)!r}), progress=False)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("table_seen.csv", "table_unseen.csv", "table_genus.csv", "table_family.csv"):
        assert (tmp_path / name).read_text() == (FIGURES / name).read_text(), f"{name} differs from figures/{name}"
    committed = sorted((FIGURES / "results").glob("results_*.json"))
    assert committed, "figures/results holds no result file"
    for f in committed:                                     # every metric, unrounded
        new, ref = (json.loads(p.read_text()) for p in (tmp_path / "results" / f.name, f))
        assert len(new["metrics"]) == len(ref["metrics"]), f"{f.name}: not the same tasks"
        for a, b in zip(new["metrics"], ref["metrics"]):     # every key the committed file has (a newer run may add keys)
            assert {k: a.get(k) for k in b} == b, f"{f.name}: metrics differ"
        assert new["features"] == ref["features"], f"{f.name}: the features (fingerprints) differ"
