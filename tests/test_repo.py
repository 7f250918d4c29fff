"Repository-level checks that notebooks cannot hold: packaging metadata, CLI, notebook hygiene."
import configparser, json, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def settings():
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def test_settings_declare_flags_tags_and_cli():
    s = settings()
    assert set(s["tst_flags"].split()) >= {"slow", "gpu", "hub"}   # nbdev splits on whitespace
    assert s["allowed_cell_metadata_keys"].strip() == "tags"
    assert "biovita=biovita_nb.cli:main" in s["console_scripts"]


def test_cli_version_from_console_script():
    from biovita_nb import __version__
    exe = shutil.which("biovita")
    assert exe, "the console script `biovita` is not installed: pip install -e ."
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"biovita_nb {__version__}"


def test_nbdev_clean_keeps_papermill_parameters_tag(tmp_path):
    nb = {"cells": [{"cell_type": "code", "execution_count": 3, "id": "x", "outputs": [],
                     "metadata": {"tags": ["parameters"], "scrolled": True}, "source": "preset = 'toy'"}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path = ROOT / "nbs" / f"_tmp_clean_{tmp_path.name}.ipynb"
    path.write_text(json.dumps(nb))
    try:
        subprocess.run(["nbdev_clean", "--fname", str(path)], cwd=ROOT, check=True, capture_output=True)
        cell = json.loads(path.read_text())["cells"][0]
    finally:
        path.unlink()
    assert cell["metadata"] == {"tags": ["parameters"]}   # tag kept, other metadata stripped
    assert cell["execution_count"] is None


def test_readme_is_generated_from_index():
    r = subprocess.run([sys.executable, "tools/make_readme.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_notebook_exports_to_a_tracked_module():
    "Each numbered notebook declares its module, and the module exists in the library."
    for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")):
        src = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"])
        if "#| default_exp" not in src: continue
        mod = src.split("#| default_exp", 1)[1].split()[0]
        assert (ROOT / "biovita_nb" / f"{mod.replace('.', '/')}.py").exists(), f"{nb.name}: biovita_nb/{mod}.py missing"


def test_flagged_cells_are_skipped_unless_asked(tmp_path):
    "A `#| slow` cell that fails is skipped by plain nbdev_test and run by `nbdev_test --flags slow`."
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "a1", "metadata": {}, "outputs": [],
                     "source": "#| slow\nraise RuntimeError('slow cell ran')"}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path = ROOT / "nbs" / f"_tmp_flags_{tmp_path.name}.ipynb"
    path.write_text(json.dumps(nb))
    try:
        plain = subprocess.run(["nbdev_test", "--path", str(path)], cwd=ROOT, capture_output=True, text=True)
        flagged = subprocess.run(["nbdev_test", "--path", str(path), "--flags", "slow"], cwd=ROOT, capture_output=True, text=True)
    finally:
        path.unlink()
    assert plain.returncode == 0, plain.stderr
    assert flagged.returncode != 0 and "slow cell ran" in flagged.stderr + flagged.stdout


def test_notebooks_and_modules_meet_the_shape_bars():
    "tools/nbstats.py --check: module sizes, notebook order, cell sizes, every exported definition demonstrated."
    r = subprocess.run([sys.executable, "tools/nbstats.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]
