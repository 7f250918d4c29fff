"""No silent wrong numbers: a user's faults through `biovita embed` / `benchmark eval`, each caught, counted or recovered.

Each test reproduces one way the tool used to give a wrong or misleading result without an error: a stale store scored
against a benchmark, a repaired file that stayed skipped, the skip report of a resumed run, task rows skipped while
reading a benchmark but missing from the result file, and an image whose picture is only in its alpha channel.
"""
import json, os, shutil, signal, subprocess, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from test_cli import BIOVITA, biovita

pytestmark = pytest.mark.skipif(BIOVITA is None, reason="the biovita console script is not installed (pip install -e .)")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "The small world, its benchmark and a store of it embedded with the toy BioCLIP 2 (images and texts)."
    tmp = tmp_path_factory.mktemp("nosilent")
    root = tmp / "small"
    biovita("toyworld", "--small", "--out", root, "--quiet", check=0)
    biovita("benchmark", "build", "--corpus", root, "--out", tmp / "bench", "--quiet", check=0)
    biovita("embed", tmp / "bench", "--root", root, "--toy", "bioclip", "--out", tmp / "store", "--quiet", check=0)
    return dict(tmp=tmp, root=root, bench=tmp / "bench", store=tmp / "store")


def _eval(bench, store, out, *extra, check=0):
    return biovita("benchmark", "eval", "--benchmark", bench, "--features", store, "--model", "m", "--out", out, "--quiet",
                   *extra, check=check)


def test_eval_checks_the_store_against_the_benchmark(world, tmp_path):
    _eval(world["bench"], world["store"], tmp_path / "ok", "--root", world["root"])
    identity = json.loads((tmp_path / "ok" / "results_m_toy.json").read_text())["features_identity"]
    assert identity["by"] == "name, size and sha256" and identity["checked"] > 0 and identity["unchecked"] == 0, identity
    # ids that now name other files (two image entries of the index swapped, as a rebuilt benchmark might)
    stale = tmp_path / "stale"; shutil.copytree(world["bench"], stale)
    index_csv = stale / "seen" / "ids" / "image_index.csv"
    index = pd.read_csv(index_csv)
    index.loc[[0, 1], "file_path"] = index.file_path[[1, 0]].to_numpy()
    index.to_csv(index_csv, index=False)
    r = _eval(stale, world["store"], tmp_path / "r1", check=2)
    assert f"image id {index.id[0]} is {index.file_path[1]!r} there, {index.file_path[0]!r} in the benchmark" in r.stderr, r.stderr
    assert not (tmp_path / "r1").exists()                                        # nothing scored, nothing written


def test_eval_refuses_a_store_of_another_corpus(world, tmp_path):
    other = tmp_path / "other"
    biovita("toyworld", "--small", "--seed", "1", "--out", other, "--quiet", check=0)
    biovita("benchmark", "build", "--corpus", other, "--out", tmp_path / "bench1", "--quiet", check=0)
    r = _eval(tmp_path / "bench1", world["store"], tmp_path / "r", check=2)
    assert "holds features of other items than the benchmark names" in r.stderr, r.stderr


def test_eval_with_root_refuses_a_changed_file(world, tmp_path):
    corpus = tmp_path / "corpus"; shutil.copytree(world["root"], corpus)
    biovita("embed", world["bench"], "--root", corpus, "--toy", "bioclip", "--out", tmp_path / "store",
            "--quiet", check=0)
    image = pd.read_csv(world["bench"] / "seen" / "ids" / "image_index.csv").iloc[0]
    other = pd.read_csv(world["bench"] / "seen" / "ids" / "image_index.csv").file_path[1]
    shutil.copy(corpus / other, corpus / image.file_path)                      # same name, other picture
    _eval(world["bench"], tmp_path / "store", tmp_path / "by_name")            # by name alone it cannot be told
    r = _eval(world["bench"], tmp_path / "store", tmp_path / "r", "--root", corpus, check=2)
    assert f"changed since they were embedded: image id {image.id} {image.file_path!r}" in r.stderr, r.stderr


def _audio_folder(world, folder: Path, n: int, broken: dict) -> Path:
    "`n` real clips of the small world (cycled), plus `broken` files {name: bytes}."
    folder.mkdir()
    clips = sorted((world["root"] / "audio").rglob("*.flac"))
    for k in range(n): shutil.copy(clips[k % len(clips)], folder / f"clip_{k:03d}.flac")
    for name, data in broken.items(): (folder / name).write_bytes(data)
    return folder


def _skip_lines(stdout: str) -> list:
    return [l for l in stdout.splitlines() if "skipped" in l and not l.startswith("retried")]


def test_a_repaired_file_is_embedded_by_the_next_run(world, tmp_path):
    folder = _audio_folder(world, tmp_path / "audio", 3, {"zz_clip.flac": b"\x00" * 4000})
    r = biovita("embed", folder, "--toy", "clap", "--out", tmp_path / "store", "--on-error", "skip", "--quiet", check=0)
    assert "1 item(s) skipped: undecodable_audio=1" in r.stdout and "zz_clip.flac (audio id 3)" in r.stdout, r.stdout
    shutil.copy(folder / "clip_000.flac", folder / "zz_clip.flac")             # the repair
    r = biovita("embed", folder, "--toy", "clap", "--out", tmp_path / "store", "--on-error", "skip", "--quiet", check=0)
    assert "retried 1 item(s) skipped by an earlier run: 1 now embedded, 0 still skipped" in r.stdout, r.stdout
    assert "no items skipped" in r.stdout and "embedded 4 audio" in r.stdout, r.stdout


def _store_arrays(path):
    from biovita_nb.store import FeatureStore
    ids, feats = FeatureStore.open(path).load("audio")
    return ids.numpy(), feats.numpy()


def test_a_resumed_run_reports_what_an_uninterrupted_run_does(world, tmp_path):
    broken = {f"clip_{k:03d}x.flac": b"\x00" * 4000 for k in (3, 17, 33, 49, 71)}   # spread over many chunks
    folder = _audio_folder(world, tmp_path / "audio", 80, broken)
    args = ["embed", folder, "--toy", "clap", "--on-error", "skip", "--batch-size", "2", "--chunk-size", "4", "--quiet"]
    whole = biovita(*args, "--out", tmp_path / "whole", check=0)
    assert "5 item(s) skipped: undecodable_audio=5" in whole.stdout, whole.stdout
    # the same run, SIGKILLed once a few chunks are on disk, then run again
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([BIOVITA, *map(str, args), "--out", str(tmp_path / "killed")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = tmp_path / "killed" / "audio"
    deadline = time.monotonic() + 300
    while len(list(chunks.glob("chunk-*.safetensors"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL); proc.wait()
    n_before = len(list(chunks.glob("chunk-*.safetensors")))
    assert 3 <= n_before < 85 / 4
    resumed = biovita(*args, "--out", tmp_path / "killed", check=0)
    assert _skip_lines(resumed.stdout) == _skip_lines(whole.stdout), resumed.stdout
    (ids_w, f_w), (ids_k, f_k) = _store_arrays(tmp_path / "whole"), _store_arrays(tmp_path / "killed")
    np.testing.assert_array_equal(ids_w, ids_k)
    # equal to float32 rounding: the resumed run tries the skipped clips first, so its batches hold other clips together
    np.testing.assert_allclose(f_w, f_k, rtol=0, atol=1e-6)
    assert len(ids_w) == 80


def test_rows_skipped_while_reading_the_benchmark_reach_the_result_file(world, tmp_path):
    bench = tmp_path / "bench"; shutil.copytree(world["bench"], bench)
    task = sorted((bench / "seen" / "species").glob("*.csv"))[0]
    rows = pd.read_csv(task)
    rows.loc[0, "query_payload_id"] = 10**9                                     # an id no index has
    rows.to_csv(task, index=False)
    r = _eval(bench, world["store"], tmp_path / "r")
    assert "unknown_id=1" in r.stdout, r.stdout
    reading = json.loads((tmp_path / "r" / "results_m_toy.json").read_text())["benchmark"]["splits"]["seen"]["read_skips"]
    assert reading["counts"] == {"unknown_id": 1}
    (item,) = reading["items"]
    assert item["reason"] == "unknown_id" and task.name in item["item"] and str(10**9) in item["detail"], item


def _alpha_only_png(path: Path):
    "A palette PNG whose colours are all white: the bird's shape is only in the alpha (tRNS) channel."
    img = Image.new("P", (64, 64), 0)
    img.putpalette([255, 255, 255] * 2)                                       # two palette entries, both white
    ImageDraw.Draw(img).ellipse((12, 20, 52, 44), fill=1)
    img.save(path, transparency=bytes([0, 255]))                             # entry 0 transparent, entry 1 opaque


def test_an_image_with_its_picture_only_in_alpha_is_not_embedded_blank(world, tmp_path):
    folder = tmp_path / "images"; folder.mkdir()
    shutil.copy(next((world["root"] / "images").rglob("*.png")), folder / "good.png")
    _alpha_only_png(folder / "white_on_alpha.png")
    r = biovita("embed", folder, "--toy", "bioclip", "--out", tmp_path / "x.npy", "--quiet", check=1)
    assert "white_on_alpha.png" in r.stderr and "alpha" in r.stderr, r.stderr
    r = biovita("embed", folder, "--toy", "bioclip", "--out", tmp_path / "x.npy", "--on-error", "skip", "--quiet", check=0)
    assert "1 item(s) skipped: blank_image=1" in r.stdout and "white_on_alpha.png" in r.stdout, r.stdout
    assert np.load(tmp_path / "x.npy").shape[0] == 1
