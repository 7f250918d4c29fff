"""The committed results are what the code computes: the main job, run again with the same seed, writes the very
metrics that the result files in `figures/` hold, the committed tables are what the code makes of those records, and
they were computed from a clean commit.

It runs the toy main job (about 20 s once the caches that `nbdev_test` builds are warm) in a fresh process."""
import json, subprocess, sys
import pandas as pd
from pathlib import Path
from biovita_nb.report import load_results, paper_tables

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures"


def test_committed_results_come_from_a_clean_commit():
    for f in sorted(FIGURES.rglob("results/results_*.json")):     # the main job's, the decisive world's, each seed's
        commit = json.loads(f.read_text())["provenance"]["git_commit"]
        assert commit and not commit.endswith("+dirty"), f"{f.name}: computed from {commit}; regenerate from a clean commit"


def tables_of(records: list, folder: Path) -> dict:
    "The tables (csv text) that the main job builds from `records`, in the row order of `folder`'s tables."
    order = list(dict.fromkeys(m for t in ("seen", "unseen", "genus", "family") if (folder / f"table_{t}.csv").exists()
                               for m in pd.read_csv(folder / f"table_{t}.csv", index_col=0).index))
    records = sorted(records, key=lambda r: order.index(r["model"]) if r["model"] in order else len(order))
    return {f"table_{t}.csv": df.to_csv() for t, df in paper_tables(records).items()}


def test_main_job_reproduces_the_committed_tables(tmp_path):
    """The run's metrics are the committed ones (every key the committed records hold), and each committed table is what
    the current code makes of the committed records: the tables are compared through the records."""
    code = ("from biovita_nb.pipeline import MainJobConfig, run_main_job\n"
            f"run_main_job(MainJobConfig(out_dir={str(tmp_path)!r}), progress=False)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("table_seen.csv", "table_unseen.csv", "table_genus.csv", "table_family.csv"):     # the run's tables are its records'
        assert (tmp_path / name).read_text() == tables_of(load_results(tmp_path / "results"), tmp_path)[name]
        assert (FIGURES / name).read_text() == tables_of(load_results(FIGURES / "results"), FIGURES)[name], \
            f"figures/{name} is not what the committed results make"
    committed = sorted((FIGURES / "results").glob("results_*.json"))
    assert committed, "figures/results holds no result file"
    for f in committed:                                     # every metric, unrounded
        new, ref = (json.loads(p.read_text()) for p in (tmp_path / "results" / f.name, f))
        assert len(new["metrics"]) == len(ref["metrics"]), f"{f.name}: not the same tasks"
        for a, b in zip(new["metrics"], ref["metrics"]):     # every key the committed file has (a newer run may add keys)
            assert {k: a.get(k) for k in b} == b, f"{f.name}: metrics differ"
        assert new["features"] == ref["features"], f"{f.name}: the features (fingerprints) differ"
    for name in ("claims_numbers.csv", "traits.csv"):         # the claims' verdicts and numbers, the trait experiment
        assert (tmp_path / name).read_text() == (FIGURES / name).read_text(), f"figures/{name} differs from the run's"
