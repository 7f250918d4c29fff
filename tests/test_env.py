"""The stack check CI runs right after the install (`python -m biovita_nb.env --check`): it passes on this
environment, and a torchaudio whose compiled library does not load stops it in seconds with the package,
its version and the fix.

The broken torchaudio is a stand-in module put first on PYTHONPATH that raises the OSError a mismatched
torchaudio wheel raises at import (the real failure, with torchaudio 2.9.1 forced beside torch 2.14.1, is
shown in the issue note); the installed metadata still says which version is there."""
import importlib.metadata, os, subprocess, sys, time

import pytest


def check(env=None):
    return subprocess.run([sys.executable, "-m", "biovita_nb.env", "--check"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def test_stack_check_passes_here():
    r = check()
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "stack: ok"


def test_a_torchaudio_that_does_not_load_fails_fast_with_the_fix(tmp_path):
    fake = tmp_path / "torchaudio"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        'raise OSError("Could not load this library: .../torchaudio/lib/libtorchaudio.so: '
        'undefined symbol: torch_exception_get_what_without_backtrace")\n')
    t0 = time.perf_counter()
    r = check({"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])})
    seconds = time.perf_counter() - t0
    assert r.returncode == 1, r.stdout + r.stderr
    version = importlib.metadata.version("torchaudio")
    bad = [l for l in r.stdout.splitlines() if l.startswith("BAD")]
    assert len(bad) == 1 and "torchaudio" in bad[0] and version in bad[0] and "libtorchaudio.so" in bad[0], r.stdout
    last = r.stdout.splitlines()[-1]
    assert last.startswith("stack: BROKEN (torchaudio)") and "requirements-lock.txt" in last, last
    assert f"torchaudio=={version.split('+')[0]}" in last, last
    print(f"\nbroken stack reported in {seconds:.1f} s:\n{r.stdout}")
