"The `biovita` console script end to end, as a user runs it: subprocesses of the installed script, on the toy world."
import json, os, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BIN = Path(sys.executable).parent
BIOVITA = shutil.which("biovita", path=str(BIN)) or shutil.which("biovita")
pytestmark = pytest.mark.skipif(BIOVITA is None, reason="the biovita console script is not installed (pip install -e .)")


def biovita(*args, cwd=None, check=None, timeout=600, env=None):
    "Run the console script; `check`: the exit code it must return (the output is shown if it does not)."
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1", **(env or {})}
    r = subprocess.run([BIOVITA, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check is not None:
        assert r.returncode == check, f"exit {r.returncode}, wanted {check}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world") / "small"
    r = biovita("toyworld", "--small", "--out", root, "--quiet", check=0)
    assert r.stdout.strip().splitlines()[-1] == str(root)
    return root


@pytest.mark.parametrize("argv", [[], ["toyworld"], ["embed"], ["benchmark"], ["benchmark", "build"], ["benchmark", "eval"],
                                  ["distill"], ["train"], ["reproduce"]])
def test_help(argv):
    r = biovita(*argv, "--help", check=0)
    assert r.stdout.startswith("usage: biovita"), r.stdout
    assert r.stderr == ""


def test_version_and_no_command():
    assert biovita("--version", check=0).stdout.startswith("biovita_nb ")
    assert "COMMAND" in biovita(check=2).stdout


def test_bad_paths_and_parameters_exit_2(tmp_path):
    missing = tmp_path / "no_such_folder"
    for argv in (["embed", missing, "--toy", "bioclip", "--out", tmp_path / "x.npy"],
                 ["benchmark", "build", "--corpus", missing, "--out", tmp_path / "b"],
                 ["benchmark", "eval", "--benchmark", missing, "--features", tmp_path, "--model", "m", "--out", tmp_path / "r"],
                 ["train", "stage1", "--corpus", missing, "--out", tmp_path / "t"],
                 ["reproduce", "--nbs", missing]):
        r = biovita(*argv, check=2)
        assert r.stderr.startswith("biovita: error:") and str(missing) in r.stderr, r.stderr
    r = biovita("train", "stage2", "--out", tmp_path / "t", check=2)                 # stage 2 needs stage 1's weights
    assert "stage1.safetensors does not exist" in r.stderr
    assert "--batch-size: 0 is not >= 1" in biovita("embed", tmp_path, "--toy", "clap", "--out", tmp_path / "x.npy",
                                                     "--batch-size", "0", check=2).stderr
    assert "invalid choice" in biovita("embed", tmp_path, "--toy", "resnet", "--out", tmp_path / "x.npy", check=2).stderr


def test_failure_inside_a_run_exits_1(tmp_path):
    (tmp_path / "corpus").mkdir()                                  # a folder, but no metadata/*.csv in it
    r = biovita("benchmark", "build", "--corpus", tmp_path / "corpus", "--out", tmp_path / "b", check=1)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("biovita benchmark: failed: DataFormatError") and "species.csv" in lines[0], r.stderr
    r = biovita("benchmark", "build", "--corpus", tmp_path / "corpus", "--out", tmp_path / "b", "--debug", check=1)
    assert "Traceback" in r.stderr


def test_embed_npy_store_and_skips(small_world, tmp_path):
    images = sorted(p for p in (small_world / "images").rglob("*") if p.is_file())
    biovita("embed", small_world / "images", "--toy", "bioclip", "--out", tmp_path / "img.npy", "--quiet", check=0)
    mat, ids = np.load(tmp_path / "img.npy"), pd.read_csv(tmp_path / "img.csv")
    assert mat.shape[0] == len(images) == len(ids) and mat.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(mat, axis=1), 1.0, atol=1e-4)
    assert ids.name.tolist() == [p.relative_to(small_world / "images").as_posix() for p in images]
    # audio + an undecodable file into a feature store: counted, listed skip under --on-error skip
    audio = tmp_path / "audio"; audio.mkdir()
    for p in sorted((small_world / "audio").rglob("*.flac"))[:3]: shutil.copy(p, audio / p.name)
    (audio / "zz_page.mp3").write_text("<html>an error page</html>")
    assert "zz_page.mp3" in biovita("embed", audio, "--toy", "clap", "--out", tmp_path / "store", "--quiet", check=1).stderr
    r = biovita("embed", audio, "--toy", "clap", "--out", tmp_path / "store", "--quiet", "--on-error", "skip", check=0)
    assert "1 item(s) skipped: undecodable_audio=1" in r.stdout and "zz_page.mp3" in r.stdout, r.stdout
    items = pd.read_csv(tmp_path / "store" / "items.csv")
    assert len(items) == 4 and json.loads((tmp_path / "store" / "store.json").read_text())["format"].startswith("biovita_nb.features")
    # texts from a .txt file
    (tmp_path / "names.txt").write_text("Aves\nInsecta\nAmphibia\n")
    biovita("embed", tmp_path / "names.txt", "--toy", "biolingual", "--out", tmp_path / "names.npy", "--quiet", check=0)
    assert np.load(tmp_path / "names.npy").shape[0] == 3


def test_benchmark_build_embed_eval_on_the_toy_world(tmp_path):
    world = Path(biovita("toyworld", "--quiet", check=0).stdout.strip().splitlines()[-1])   # the warm default world
    biovita("benchmark", "build", "--corpus", world, "--out", tmp_path / "bench", "--quiet", check=0)
    assert sorted(p.name for p in (tmp_path / "bench").iterdir()) == ["seen", "unseen"]
    # the toy BioCLIP 2 embeds images and texts (all three modalities: the notebook's stage-2 demo on the small world)
    biovita("embed", tmp_path / "bench", "--root", world, "--toy", "bioclip", "--out", tmp_path / "bioclip", "--quiet",
            "--batch-size", "64", check=0)
    biovita("benchmark", "eval", "--benchmark", tmp_path / "bench", "--features", tmp_path / "bioclip", "--model", "toy BioCLIP 2",
            "--out", tmp_path / "results", "--quiet", check=0)
    rec = json.loads((tmp_path / "results" / "results_toy_bioclip_2_toy.json").read_text())
    assert rec["provenance"]["model"] == "toy BioCLIP 2" and rec["provenance"]["preset"] == "toy"
    m = {(x["split"], x["level"], x["direction"]): x for x in rec["metrics"]}
    assert len(m) == 12 and {d for _, _, d in m} == {"I->T", "T->I"}   # 2 splits x 3 levels x the 2 image-text directions
    seen = m[("seen", "species", "I->T")]
    assert seen["n_candidates_max"] == 43 and seen["top1"] > seen["random_top1"] + 20   # far above chance on its own world
    for ext in ("csv", "md", "tex"): assert (tmp_path / "results" / f"table_seen.{ext}").is_file()
    table = pd.read_csv(tmp_path / "results" / "table_seen.csv", index_col=0)
    assert list(table.index) == ["toy BioCLIP 2", "Random"] and table.loc["toy BioCLIP 2", "A->T"] == "–"


def test_distill_toy_one_epoch(tmp_path):
    r = biovita("distill", "--preset", "toy", "--epochs", "1", "--out", tmp_path / "d", "--quiet", check=0)
    assert "(1 epochs" in r.stdout, r.stdout
    assert (tmp_path / "d" / "model.pt").is_file()
    assert json.loads((tmp_path / "d" / "record.json").read_text())["config"]["epochs"] == 1


def torch_equal(a, b):
    import torch
    return torch.equal(a, b)


def _weights(path):
    from safetensors.torch import load_file
    return load_file(str(path))


def _start_weights():
    "The weights stage 1 starts from: the toy stand-ins' BioCLIP 2 + LAION CLAP, adapter seeded 0."
    import copy
    from biovita_nb.runs import toy_standins
    from biovita_nb.model import BioVITA
    s = toy_standins()
    return BioVITA.from_pretrained_parts(copy.deepcopy(s.bioclip.model), s.laion_clap.model, seed=0).state_dict()


def test_train_stage1_single_process_and_torchrun(small_world, tmp_path):
    torchrun = shutil.which("torchrun", path=str(BIN))
    common = ["--corpus", small_world, "--epochs", "1", "--quiet"]
    biovita("train", "stage1", *common, "--batch-size", "8", "--out", tmp_path / "one", check=0)
    r = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", BIOVITA, "train", "stage1", *map(str, common),
                        "--batch-size", "4", "--out", str(tmp_path / "two")], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("steps, final loss") == 1, r.stdout                      # rank 0 alone prints
    assert sorted(p.name for p in (tmp_path / "two" / "stage1").iterdir()) == ["rank0", "rank1"]
    hist1 = json.loads((tmp_path / "one" / "stage1_history.json").read_text())
    hist2 = json.loads((tmp_path / "two" / "stage1_history.json").read_text())
    assert len(hist1) == len(hist2) > 0                                            # the same global batches
    # the same global batch of clips and prompts: the first loss agrees up to the stand-in CLAP's dropout masks, which
    # differ between ranks (the exact DDP == one-process check, on a dropout-free model, is tests/test_train.py's)
    assert hist1[0]["l_at"] == pytest.approx(hist2[0]["l_at"], rel=0.05)
    one, two, start = _weights(tmp_path / "one" / "stage1.safetensors"), _weights(tmp_path / "two" / "stage1.safetensors"), _start_weights()
    trained = [k for k in one if k.startswith(("clap_audio.", "audio_adapter."))]
    for w in (one, two):
        assert all(bool(w[k].isfinite().all()) for k in trained)
        assert sum(float(((w[k] - start[k]).double() ** 2).sum()) for k in trained) > 0     # training moved the weights
    assert all(torch_equal(one[k], start[k]) for k in one if k.startswith("oc_model."))     # BioCLIP 2 stays frozen
    # the same two-rank run with its audio read from shards, prepared by two torchrun ranks (float32: the files' crops)
    r = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", BIOVITA, "corpus", "prepare", "--corpus", str(small_world),
                        "--out", str(tmp_path / "prepared"), "--dtype", "float32", "--per-shard", "8", "--quiet"],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((tmp_path / "prepared" / "prepare.json").read_text())["complete"]    # the last rank wrote the index
    r = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", BIOVITA, "train", "stage1", *map(str, common),
                        "--batch-size", "4", "--prepared", str(tmp_path / "prepared"), "--out", str(tmp_path / "two_prepared")],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and "(from the shards in" in r.stdout, r.stdout + r.stderr
    hist3 = json.loads((tmp_path / "two_prepared" / "stage1_history.json").read_text())
    assert [h["l_at"] for h in hist3] == pytest.approx([h["l_at"] for h in hist2], rel=1e-4)   # the same steps, same losses
    # stage 2 on two ranks from the same shards, crops read ahead by a DataLoader worker per rank
    r = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", BIOVITA, "train", "stage2", *map(str, common),
                        "--batch-size", "4", "--prepared", str(tmp_path / "prepared"), "--loader-workers", "1",
                        "--out", str(tmp_path / "two_prepared")],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and "(from the shards in" in r.stdout, r.stdout + r.stderr
    hist4 = json.loads((tmp_path / "two_prepared" / "stage2_history.json").read_text())
    assert len(hist4["phase1"]) > 0 and len(hist4["phase2"]) > 0
    assert all(h["loss"] == h["loss"] for h in hist4["phase1"] + hist4["phase2"])          # no NaN
    images = list((tmp_path / "two_prepared" / "stage2" / "images").glob("images-*/images.json"))
    assert len(images) == 1                                   # both ranks shared one folder of image embeddings


def test_train_stage2_from_stage1(small_world, tmp_path):
    common = ["--corpus", small_world, "--epochs", "1", "--batch-size", "8", "--quiet", "--out", tmp_path]
    biovita("train", "stage1", *common, check=0)
    r = biovita("train", "stage2", *common, check=0)                              # --init: <out>/stage1.safetensors
    hist = json.loads((tmp_path / "stage2_history.json").read_text())
    assert len(hist["phase1"]) > 0 and len(hist["phase2"]) > 0, hist
    assert {"l_at", "l_ai", "l_it", "gate", "lambda_ai"} <= set(hist["phase2"][0])
    s1, s2 = _weights(tmp_path / "stage1.safetensors"), _weights(tmp_path / "stage2.safetensors")
    assert all(bool(w.isfinite().all()) for w in s2.values())
    assert all(torch_equal(s1[k], s2[k]) for k in s1 if k.startswith("oc_model.visual."))   # the image tower never trains
    moved = lambda prefix: any(not torch_equal(s1[k], s2[k]) for k in s1 if k.startswith(prefix))
    assert moved("audio_adapter.") and moved("oc_model.transformer.")                       # phase 2 tunes the text tower
    assert "steps, final loss" in r.stdout


def _notebook(path, *cells, params=None):
    import nbformat
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}})
    if params: nb.cells.append(nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


def test_reproduce_runs_the_notebooks_in_order(tmp_path):
    nbs = tmp_path / "nbs"; nbs.mkdir()
    (tmp_path / "settings.ini").write_text("[DEFAULT]\n")                           # ./nbs beside settings.ini: a checkout
    _notebook(nbs / "00_a.ipynb", "from pathlib import Path\nPath(out_dir, 'order.txt').write_text(preset + ' a')",
              params='preset = "none"\nout_dir = "nowhere"')
    _notebook(nbs / "05_b.ipynb", "from pathlib import Path\np = Path(out_dir, 'order.txt')\np.write_text(p.read_text() + ' b')",
              params='out_dir = "nowhere"')
    r = biovita("reproduce", "--preset", "toy", "--quiet", cwd=tmp_path, check=0)
    assert (tmp_path / "figures" / "order.txt").read_text() == "toy a b"
    assert sorted(p.name for p in (tmp_path / "_runs").iterdir()) == ["00_a.ipynb", "05_b.ipynb"]
    _notebook(nbs / "06_c.ipynb", "raise RuntimeError('step c broke')")
    r = biovita("reproduce", "--quiet", "--only", "06", cwd=tmp_path, check=1)
    assert "06_c.ipynb failed" in r.stderr and "step c broke" in r.stderr, r.stderr


def test_corpus_import_hub_train_and_ssw60(tmp_path):
    from biovita_nb.corpus import read_corpus
    from biovita_nb.hub_train import make_hub_train_fixture
    from biovita_nb.testing import make_ssw60_fixture
    hub = make_hub_train_fixture(tmp_path / "hub")
    assert "hub-train" in biovita("corpus", "import", "--help", check=0).stdout
    r = biovita("corpus", "import", "hub-train", "--metadata", hub / "train/metadata.csv", "--audio-dir", hub / "audio",
                "--image-dir", hub / "images", "--out", tmp_path / "corpus", "--quiet", check=0)
    assert "report -> " in r.stdout and r.stderr == "", r.stdout + r.stderr
    corpus = read_corpus(tmp_path / "corpus")
    assert (len(corpus.report), len(corpus.species), len(corpus.audio), len(corpus.image)) == (0, 3, 6, 3)
    assert corpus.audio.file_name[0] == "../hub/audio/xc_1001.mp3" and set(corpus.audio.split) == {"train"}
    rep = json.loads((tmp_path / "corpus/import_report.json").read_text())
    assert rep["dropped"] == dict(audio_not_downloaded=1, bad_taxon_name=1, duplicate_recording=1, missing_file=1,
                                  species_without_audio=1, taxon_mismatch=1), rep
    assert rep["noted"]["species_without_images"] == 1 and rep["kept"] == dict(species=3, audio=6, image=3)
    r = biovita("corpus", "import", "hub-train", "--metadata", hub / "train/metadata.csv", "--audio-dir", hub / "audio",
                "--image-dir", hub / "images", "--out", tmp_path / "strict", "--on-error", "raise", "--quiet", check=1)
    assert "metadata.csv, row 8, column " in r.stderr and "'Corvus' is not a binomial" in r.stderr and not (tmp_path / "strict").exists(), r.stderr
    assert "--audio-dir" in biovita("corpus", "import", "hub-train", "--metadata", hub / "train/metadata.csv", "--audio-dir",
                                    tmp_path / "nope", "--image-dir", hub / "images", "--out", tmp_path / "c", check=2).stderr
    biovita("corpus", "import", "ssw60", "--root", make_ssw60_fixture(tmp_path / "ssw60"), "--out", tmp_path / "ssw", check=0)
    ssw = read_corpus(tmp_path / "ssw")
    assert (len(ssw.report), len(ssw.audio), len(ssw.image)) == (0, 6, 12)
    assert json.loads((tmp_path / "ssw/import_report.json").read_text())["dropped"] == dict(validation_split=3)
