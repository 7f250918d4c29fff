"""A seed sweep of the toy job, end to end: `reproduction.seed_sweep` over method seeds 0 and 1 on the default world.

Only the methods that are trained (BioVITA's two stages, paper B's student) may move from seed to seed; the rows that
nothing trains (the toy BioCLIP 2 and CLAP stand-ins, paper B's zero-shot combination and ridge mapping) must score
exactly the same at both seeds, which checks that `method_seed` leaves the benchmark and the stand-ins alone.

Seed 0 reuses the models the default job cached; seed 1 trains its own the first time (both BioVITA stages and paper B's
three students: the whole test took 17 minutes on two busy CPU cores), then reuses them too (each job of the sweep then
takes about half a minute, as the default job does with warm caches)."""
import math

import pandas as pd

from biovita_nb.pipeline import MainJobConfig
from biovita_nb.reproduction import seed_sweep
from biovita_nb.report import load_results

FIXED = ("toy BioCLIP 2", "toy CLAP", "zero-shot combination (mix)", "text-space mapping (ridge)")
TRAINED = ("distillation (paper B)", "BioVITA stage 1", "BioVITA stage 2")


def test_seed_sweep_moves_only_what_is_trained(tmp_path):
    spread, runs, written = seed_sweep(MainJobConfig(out_dir=tmp_path / "unused"), (0, 1), tmp_path, progress=False)
    assert sorted(p.name for p in written) == sorted(f"{t}.{e}" for t in ("seed_spread", "seed_spread_seen") for e in ("csv", "md", "tex"))
    assert set(spread.index) == set(FIXED) | set(TRAINED)
    for s in (0, 1):                                       # each seed's run in its folder, the seed in every record
        records = load_results(tmp_path / "seeds" / f"method_seed_{s}" / "results")
        assert len(records) == 7 and {r["provenance"]["method_seed"] for r in records} == {s}
        assert {r["provenance"]["seed"] for r in records} == {0}          # the benchmark's seed: one benchmark for both
    scored = spread.dropna(subset=["mean"])
    fixed, trained = scored.loc[list(FIXED)], scored.loc[list(TRAINED)]
    assert (fixed.seed_0 == fixed.seed_1).all() and (fixed["range"] == 0).all(), fixed
    assert all(math.isclose(v, 0.0, abs_tol=1e-12) for v in fixed.sd), fixed
    for model in TRAINED:                                  # retrained at another seed: another model, other numbers
        assert (trained.loc[[model], "range"] > 0).any(), trained.loc[[model]]
    table = pd.read_csv(tmp_path / "seed_spread_seen.csv", index_col=0)
    assert list(table.index) == list(dict.fromkeys(spread.index)) and table.loc["toy BioCLIP 2", "I->T"].split("±")[1].startswith("0.0 ")
