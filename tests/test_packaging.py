"""`python -m build` gives a wheel and an sdist that install into a fresh venv and work there, away from the repo:
`biovita --help`, `import biovita_nb`, `biovita embed` into .parquet (pyarrow comes with the install), and the toy main
job without the repo's nbs/.

Needs the package registry for the dependencies (pip's cache makes it a minute or two); skipped, saying so, when the
registry cannot be reached. Set BIOVITA_SKIP_PACKAGING=1 to skip it on purpose."""
import json, os, re, shutil, subprocess, sys, time, zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".venv*", "venv", ".git", "_runs", "_proc", "_docs", "_site", "build", "dist", "*.egg-info",
                                "__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".biovita_cache", "figures")
NETWORK = re.compile(r"(connection|network is unreachable|temporary failure in name resolution|max retries|"
                     r"no matching distribution|could not find a version)", re.I)

pytestmark = pytest.mark.skipif(os.environ.get("BIOVITA_SKIP_PACKAGING") == "1", reason="BIOVITA_SKIP_PACKAGING=1")


def run(cmd, timeout=1200, env=None, **kw):
    "Run `cmd` without PYTHONPATH: a checkout on it (and its egg-info) would stand in for the installed package."
    env = {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONPATH"}
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env, **kw)


def ok(r):
    assert r.returncode == 0, f"{' '.join(map(str, r.args))} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    "A wheel and an sdist built from a copy of the working tree (uncommitted work included)."
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=IGNORE)
    t0 = time.perf_counter()
    ok(run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", tmp / "dist"], cwd=src))
    print(f"\nbuild: {time.perf_counter() - t0:.1f} s")
    wheel, = (tmp / "dist").glob("biovita_nb-*.whl")
    sdist, = (tmp / "dist").glob("biovita_nb-*.tar.gz")
    return tmp, wheel, sdist


@pytest.fixture(scope="module")
def venv(built):
    "A fresh venv with the wheel and its dependencies installed from the registry."
    tmp, wheel, _ = built
    env_dir = tmp / "venv"
    ok(run([sys.executable, "-m", "venv", env_dir]))
    t0 = time.perf_counter()
    r = run([env_dir / "bin" / "python", "-m", "pip", "install", "-q", wheel])
    if r.returncode and NETWORK.search(r.stdout + r.stderr):
        pytest.skip(f"the package registry cannot be reached to install the dependencies: {NETWORK.search(r.stdout + r.stderr)[0]}")
    ok(r)
    print(f"\nwheel install into a fresh venv: {time.perf_counter() - t0:.1f} s")
    return env_dir


def test_wheel_holds_the_package_and_the_console_script(built):
    _, wheel, _ = built
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("__init__", "cli", "core", "corpus", "media", "formats", "hub", "model", "evaluate", "report", "train", "distill", "standins", "toyworld", "pipeline"):
        assert f"biovita_nb/{module}.py" in names, module
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "biovita = biovita_nb.cli:main" in entry_points


def test_installed_wheel_works_outside_the_repo(venv, tmp_path):
    bin_ = venv / "bin"
    r = ok(run([bin_ / "biovita", "--help"], cwd=tmp_path))
    assert r.stdout.startswith("usage: biovita")
    r = ok(run([bin_ / "python", "-c", "import biovita_nb, biovita_nb.cli, biovita_nb.evaluate; print(biovita_nb.__file__)"], cwd=tmp_path))
    assert Path(r.stdout.strip()).is_relative_to(venv), r.stdout            # the installed copy, not the repo's
    assert "usage: biovita train" in ok(run([bin_ / "biovita", "train", "--help"], cwd=tmp_path)).stdout
    r = ok(run([bin_ / "biovita", "env"], cwd=tmp_path))                   # the stack a plain `pip install` resolves loads
    assert "stack: ok" in r.stdout and "cache: " in r.stdout, r.stdout


def test_toy_main_job_from_the_installed_package(venv, tmp_path):
    bin_ = venv / "bin"
    work = tmp_path / "work"; work.mkdir()                                   # no nbs/, no settings.ini here
    t0 = time.perf_counter()
    r = ok(run([bin_ / "biovita", "reproduce", "--preset", "toy", "--figures", tmp_path / "out", "--quiet"], cwd=work,
               env={**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}))   # the warm default cache
    print(f"\ntoy main job from the installed package: {time.perf_counter() - t0:.1f} s")
    assert "running the main job" in r.stdout, r.stdout
    assert (tmp_path / "out" / "table_seen.csv").is_file()
    assert not (work / "_runs").exists()


def test_embed_writes_parquet_from_the_installed_package(venv, tmp_path):
    "pyarrow comes with the install: `biovita embed --out FILE.parquet` writes a table that pandas in that venv reads back."
    from PIL import Image
    import numpy as np
    images = tmp_path / "images"; images.mkdir()
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(images / f"img{i}.png")
    bin_ = venv / "bin"
    t0 = time.perf_counter()
    r = ok(run([bin_ / "biovita", "embed", images, "--toy", "bioclip", "--out", tmp_path / "feats.parquet", "--quiet"], cwd=tmp_path))
    print(f"\nbiovita embed --out .parquet from the installed package: {time.perf_counter() - t0:.1f} s")
    assert "feats.parquet" in r.stdout, r.stdout
    check = ("import json, sys, numpy as np, pandas as pd; d = pd.read_parquet(sys.argv[1]); m = np.stack(d.embedding); "
             "print(json.dumps(dict(names=d.name.tolist(), shape=m.shape, dtype=str(m.dtype), norms=np.linalg.norm(m, axis=1).tolist())))")
    got = json.loads(ok(run([bin_ / "python", "-c", check, tmp_path / "feats.parquet"], cwd=tmp_path)).stdout)
    assert got["names"] == ["img0.png", "img1.png", "img2.png"] and got["shape"][0] == 3 and got["shape"][1] > 0, got
    assert got["dtype"] == "float32" and max(abs(n - 1) for n in got["norms"]) < 1e-4, got


def test_sdist_installs_too(built, venv, tmp_path):
    _, _, sdist = built
    t0 = time.perf_counter()
    ok(run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", sdist]))
    print(f"\nsdist install (no deps): {time.perf_counter() - t0:.1f} s")
    r = ok(run([venv / "bin" / "python", "-c", "import biovita_nb, biovita_nb.cli; print(biovita_nb.__version__)"], cwd=tmp_path))
    assert r.stdout.strip() == ok(run([sys.executable, "-c", "import biovita_nb; print(biovita_nb.__version__)"], cwd=REPO)).stdout.strip()
