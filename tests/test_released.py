"""The paper preset on the artifacts as they were released, offline: the miniature of the release (`04c_minihub`: the
BioVITA dataset repo, SSW60 and the four models, in their released layouts with every known quirk, published under
the real ids at the pinned revisions) run through the main job and paper B's evaluation exactly as a user runs them,
with papermill on the notebooks, in fresh processes. Every planted quirk must show up in the run's report, counted.

About 40 s once the caches that `nbdev_test` builds are warm."""
import json, os, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from biovita_nb.hub import DATASET_SPECS, MODEL_SPECS
from biovita_nb.minihub import make_minihub

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mini():
    return make_minihub()


def papermill(notebook: str, runs: Path, **params):
    "Run `nbs/<notebook>` with papermill in a fresh process, the hub offline; the executed copy goes to `runs`."
    args = [sys.executable, "-m", "papermill", str(ROOT / "nbs" / notebook), str(runs / notebook), "--cwd", str(ROOT / "nbs")]
    for k, v in params.items(): args += ["-p", k, str(v)]
    r = subprocess.run(args, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]


def test_main_job_paper_preset_on_the_release(mini, tmp_path):
    papermill("05_benchmark.ipynb", tmp_path, preset="paper", hub_cache=mini.hub_cache, out_dir=tmp_path)
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "results").glob("results_*.json"))]
    assert sorted(r["model"] for r in records) == ["BioCLIP 2", "BioVITA (release)", "LAION CLAP"]
    for r in records:
        reading = r["benchmark"]
        assert list(reading["splits"]) == ["unseen"]                       # the seen half ships no task files
        assert "no task file with rows" in reading["unavailable"]["seen"]
        assert reading["splits"]["unseen"]["handled"] == mini.expected["benchmark"], r["model"]
        assert reading["splits"]["unseen"]["read_skips"] == dict(counts={}, items=[])
        audio = r["model"] != "BioCLIP 2"                                  # the HTML page: a counted skip of every audio encoder
        assert r["input_skips"]["unseen"]["counts"] == (mini.expected["audio_skips"] if audio else {}), r["model"]
        assert {m["split"] for m in r["metrics"]} == {"unseen"}
        assert {m["level"] for m in r["metrics"]} == {"species", "genus"}   # family: header-only upstream
    release = next(r for r in records if r["model"] == "BioVITA (release)")
    assert release["provenance"]["revisions"]["biovita"] == MODEL_SPECS["biovita"].revision
    assert DATASET_SPECS["biovita"].revision in reading["splits"]["unseen"]["root"]
    unseen = pd.read_csv(tmp_path / "table_unseen.csv", index_col=0)
    assert {"BioCLIP 2", "LAION CLAP", "BioVITA (release)", "BioVITA Stage 2 (paper)"} <= set(unseen.index)
    assert unseen.loc["BioVITA (release)"].ne("–").all()                   # a number in every direction


def test_paper_b_ssw60_table_on_the_release(mini, tmp_path):
    papermill("03a_distill_eval.ipynb", tmp_path, preset="paper", ssw60_root=mini.ssw60, hub_cache=mini.hub_cache,
              out_dir=tmp_path, epochs=2)
    a2i = pd.read_csv(tmp_path / "distill_paper_a2i.csv", index_col=0)
    assert {"SSW60 / NABirds mAP", "SSW60 / iNat mAP"} <= set(a2i.columns)
    assert "distillation (paper B)" in a2i.index and a2i.notna().all().all()
    reading = pd.read_csv(tmp_path / "distill_paper_reading.csv")
    got = {k: dict(zip(g.what, g["count"])) for k, g in reading.groupby("kind")}
    assert got == {"handled": mini.expected["ssw60"], "skipped": mini.expected["ssw60_skips"]}


BIOVITA = Path(sys.executable).with_name("biovita")


def biovita(*args):
    "The console script, as a user runs it, the hub offline."
    r = subprocess.run([str(BIOVITA), *map(str, args)], env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    return r.stdout


def test_training_data_imports_as_a_corpus(mini, tmp_path):
    snapshot = mini.hub_cache / "datasets--risashinoda--BioVITA" / "snapshots" / DATASET_SPECS["biovita"].revision
    out = biovita("corpus", "import", "hub-train", "--metadata", snapshot / "train/metadata.csv", "--audio-dir",
                  mini.downloads / "audio", "--image-dir", mini.downloads / "images", "--out", tmp_path / "corpus", "--quiet")
    report = json.loads((tmp_path / "corpus/import_report.json").read_text())
    assert report["dropped"] == mini.expected["train_import"], out


def test_distill_paper_preset_trains_on_released_ssw60(mini, tmp_path):
    out = biovita("distill", "--preset", "paper", "--ssw60", mini.ssw60, "--hub-cache", mini.hub_cache, "--epochs", 1,
                  "--out", tmp_path, "--quiet")
    assert (tmp_path / "model.pt").is_file()
    assert "'missing_file': 1" in out and f"'validation_split': {mini.expected['ssw60']['validation_split']}" in out, out
