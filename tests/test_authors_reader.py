"""The benchmark folders our builder writes, scored by the authors' evaluator logic, give our numbers.

The authors' `eval/eval_benchmark.py` (github.com/dahlian00/BioVITA, with `FeatureBank` from `eval/extract_features.py`)
is the reference for the benchmark's numbers. It is re-implemented below, compactly, keeping everything that decides
a number: the six task files per level `{base}/{level}/test_{query}_to_{gallery}.csv` (missing ones skipped), the
dispatch on the `task` cell's code prefix (A2I, I2A, A2T, T2A, I2T, T2I; anything else: `ValueError("Unknown task:
...")`), text features looked up with `sub=level`, every candidate id coerced with `int()`, a missing feature read as a
zero vector, a candidate scored by the max dot product over its gallery ids (-inf for an empty group), rows whose
correct taxon is not a candidate skipped, `torch.topk(scores, k=max(ks))` and Top@k = hits / max(1, n). Features
travel through the FeatureBank file protocol (`<feat_root>/<tag>/<modality>/<id>.pt`, text files {level: tensor}).
This is their CPU path (float32 dot products); on a GPU their script scores in float16, which is not reproduced here.

The toy world's seen and unseen benchmarks are built, written with `write_benchmark` and read back with
`read_benchmarks`; features are seeded continuous vectors (clustered by taxon, so the numbers are neither 0 nor
chance, and without ties, so tie-breaking cannot matter). Compared, per split, level and direction: the scored
queries, Top@1/5/10 and every query's hit@k. Three differences are asserted as such:

* the toy world has fewer than 10 candidate taxa per query at the family level (7 seen, 6 unseen); there the
  authors' `torch.topk(k=10)` raises `RuntimeError` (their script stops), while ours reports Top@10 = 100 %. Those
  tasks are compared at the k the authors' script can run (`--ks 1,5`).
* missing features: the authors substitute zeros (a query without a feature is still scored, against all-zero
  scores; a gallery item without one scores 0 inside its taxon's max), ours leave such items out and count them
  (`missing_query_feature`, `correct_taxon_without_gallery_features`).
* the size of the authors' zero vectors comes from the query first in set order (else the gallery vectors read so
  far, else 512): with that query and the lowest gallery ids missing, their script fails in `torch.stack`.
"""
import json, os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from biovita_nb.builder import build_benchmark, direction_name
from biovita_nb.corpus import read_corpus
from biovita_nb.formats import DIRECTIONS, MODALITIES, TASK_CODES, Features, read_benchmarks, task_path, write_benchmark
from biovita_nb.metrics import evaluate_benchmark
from biovita_nb.toyworld import make_toyworld

KS = (1, 5, 10)
DIM = 16

# ---------------------------------------------------------------------------------------------------------------------
# The authors' evaluator (eval/eval_benchmark.py), re-implemented
# ---------------------------------------------------------------------------------------------------------------------
AUTHOR_CODES = {"A2I": ("audio", "image"), "I2A": ("image", "audio"), "A2T": ("audio", "text"),
                "T2A": ("text", "audio"), "I2T": ("image", "text"), "T2I": ("text", "image")}
AUTHOR_LEVELS = ("species", "genus", "family")


def authors_task_csv_paths(base) -> dict:
    "get_task_csv_paths: {level: {code: path}}."
    return {lv: {c: os.path.join(base, lv, f"test_{q}_to_{g}.csv") for c, (q, g) in AUTHOR_CODES.items()}
            for lv in AUTHOR_LEVELS}


class AuthorsBank:
    "FeatureBank's reading side: `<root>/<tag>/<modality>/<int(id)>.pt`; a dict file (text) is indexed by `sub`."
    def __init__(self, root, tag=None):
        self.root, self.cache = (Path(root) / tag if tag else Path(root)), {}

    def get(self, modality, i, sub=None):
        "The float32 vector, or None where FeatureBank.has() is False (no file, or a dict without `sub`)."
        key = (modality, int(i), sub)
        if key not in self.cache:
            p, v = self.root / modality / f"{int(i)}.pt", None
            if p.exists():
                v = torch.load(p, map_location="cpu", weights_only=True)
                if isinstance(v, dict): v = v.get(sub) if sub is not None else v.get("text", next(iter(v.values())))
                v = None if v is None else v.to(torch.float32)
            self.cache[key] = v
        return self.cache[key]


def authors_evaluate_csv(csv_path, feat_root, tag, ks=KS) -> dict:
    "evaluate_csv (CPU path): n, Top@k as fractions, and each scored row's hits ({query id: {k: hit}})."
    df = pd.read_csv(csv_path)
    if len(df) == 0: return {"n": 0, **{f"Top@{k}": 0.0 for k in ks}}
    task, level = df["task"].iloc[0], df["taxon_level"].iloc[0]
    for code, (q_mod, g_mod) in AUTHOR_CODES.items():
        if task.startswith(code): break
    else: raise ValueError(f"Unknown task: {task}")
    sub = {"audio": None, "image": None, "text": level}
    bank = AuthorsBank(feat_root, tag)
    groups_per_row = [json.loads(s) for s in df["candidates_target_ids"]]
    all_ids = sorted({int(i) for groups in groups_per_row for ids in groups for i in ids})
    q_ids = set(df["query_payload_id"].astype(int).tolist())
    hint = bank.get(q_mod, next(iter(q_ids)), sub[q_mod])
    vecs = []
    for i in all_ids:                                        # a missing gallery feature: a zero vector
        v = bank.get(g_mod, i, sub[g_mod])
        vecs.append(v if v is not None else torch.zeros(hint.numel() if hint is not None else
                                                        vecs[0].numel() if vecs else 512, dtype=torch.float32))
    Z = torch.stack(vecs)
    q_cache = {i: (v if (v := bank.get(q_mod, i, sub[q_mod])) is not None else torch.zeros(Z.shape[1])) for i in q_ids}
    id2row = {i: r for r, i in enumerate(all_ids)}
    hits, total, rows = {k: 0 for k in ks}, 0, {}
    for groups, cands, gt, q_id in zip(groups_per_row, map(json.loads, df["candidates_taxa"]), df["correct_taxon"],
                                       df["query_payload_id"].astype(int)):
        s_all = torch.matmul(Z, q_cache[q_id])
        scores = []
        for ids in groups:
            r = [id2row[int(i)] for i in ids if int(i) in id2row]
            scores.append(torch.amax(s_all.index_select(0, torch.tensor(r, dtype=torch.long))) if r
                          else torch.tensor(float("-inf")))
        scores = torch.stack(scores)
        if gt not in cands: continue
        gt_idx = cands.index(gt)
        total += 1
        top = torch.topk(scores, k=max(ks), largest=True, sorted=True).indices.tolist()
        rows[q_id] = {k: gt_idx in top[:k] for k in ks}
        for k in ks: hits[k] += rows[q_id][k]
    return {"task": task, "level": level, "n": total, **{f"Top@{k}": hits[k] / max(1, total) for k in ks}, "rows": rows}


# ---------------------------------------------------------------------------------------------------------------------
# The benchmark (ours), features, and both evaluations
# ---------------------------------------------------------------------------------------------------------------------
def unit(v): return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def make_features(bench, item_species: dict, seed=0, noise=0.45) -> dict:
    """{'audio': Features, 'image': Features, 'text': {level: Features}}: an item's vector is its species' centre plus
    noise; a text id at a level gets the vector of its taxon's name there (one vector per genus name at genus level)."""
    rng = np.random.default_rng(seed)
    tx = bench.indices["text"]
    centre = {}
    for _, r in tx.sort_values("id").iterrows():             # family -> genus -> species centres, nested
        f = centre.setdefault(("family", r.family), rng.normal(size=DIM))
        g = centre.setdefault(("genus", r.genus), f + 0.7 * rng.normal(size=DIM))
        centre.setdefault(("species", r.species), g + 0.7 * rng.normal(size=DIM))
    out = {}
    for m in ("audio", "image"):
        ids = bench.indices[m].id.to_numpy(np.int64)
        c = np.stack([unit(centre[("species", item_species[m][i])]) for i in ids])
        out[m] = Features(ids, unit(c + noise * rng.normal(size=c.shape)), modality=m)
    out["text"] = {lv: Features(tx.id.to_numpy(np.int64), unit(np.stack([centre[(lv, n)] for n in tx[lv]])), modality="text")
                   for lv in AUTHOR_LEVELS}
    return out


def save_feature_bank(feats: dict, root: Path, drop: dict | None = None):
    "The FeatureBank layout: one `<id>.pt` per item; text files hold {level: tensor}. `drop`: {modality: ids left out}."
    drop = drop or {}
    for m in MODALITIES:
        (root / m).mkdir(parents=True, exist_ok=True)
        per_level = feats[m] if m == "text" else {None: feats[m]}
        vec = {}
        for lv, f in per_level.items():
            for i, v in zip(f.ids.tolist(), f.vectors):
                vec.setdefault(i, {})[lv] = torch.from_numpy(v.copy())
        for i, v in vec.items():
            if i not in drop.get(m, ()): torch.save(v if m == "text" else v[None], root / m / f"{i}.pt")   # text: the dict


def without(f: Features, ids) -> Features:
    keep = ~np.isin(f.ids, list(ids))
    return Features(f.ids[keep], f.vectors[keep], modality=f.modality)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("authors")
    world = make_toyworld(progress=False)
    corpus = read_corpus(world.root)
    built = build_benchmark(corpus)
    for split, b in built.items(): write_benchmark(b, root / "bench" / split)
    benches = read_benchmarks(root / "bench")
    assert set(benches) == set(built) == {"seen", "unseen"}
    item_species = {m: dict(zip(corpus.items(m, "test").id, corpus.items(m, "test").species)) for m in ("audio", "image")}
    feats = {s: make_features(b, item_species) for s, b in benches.items()}
    for s in benches: save_feature_bank(feats[s], root / "feats" / s)
    ours = {s: evaluate_benchmark(b, feats[s]) for s, b in benches.items()}
    return dict(root=root, benches=benches, feats=feats, ours=ours)


def runnable_ks(n_candidates: int) -> tuple:
    "The k of `KS` the authors' topk can take with this many candidates."
    return tuple(k for k in KS if k <= n_candidates)


def each_task(setup):
    "(split, level, code, csv path, our TaskResult, our task frame) for every task file the authors' script finds."
    for split, bench in setup["benches"].items():
        for level, tasks in authors_task_csv_paths(setup["root"] / "bench" / split).items():
            for code, path in tasks.items():
                if not os.path.exists(path): continue
                q, g = AUTHOR_CODES[code]
                yield split, level, code, path, setup["ours"][split].results[(level, direction_name(q, g))], bench.tasks[(level, q, g)]


# ---------------------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------------------
def test_task_files_are_where_the_authors_look_and_carry_their_codes(setup):
    for split in setup["benches"]:
        base = setup["root"] / "bench" / split
        authors = authors_task_csv_paths(base)
        written = sorted(base.glob("*/test_*.csv"))
        assert len(written) == len(AUTHOR_LEVELS) * len(DIRECTIONS) == 18
        for level in AUTHOR_LEVELS:
            for q, g in DIRECTIONS:
                code = TASK_CODES[(q, g)]
                assert Path(authors[level][code]) == base / task_path(level, q, g)
                raw = pd.read_csv(authors[level][code])
                assert len(raw) and set(raw["task"]) == {code}, f"{split} {level} {code}: task column {set(raw['task'])}"
                assert set(raw["taxon_level"]) == {level}           # the authors' text sub-key
        assert (base / "ids" / "text_index.csv").is_file()           # their --ids_dir


def test_authors_dispatch_rejects_long_task_names(setup, tmp_path):
    src = setup["root"] / "bench" / "seen" / task_path("species", "audio", "image")
    df = pd.read_csv(src).assign(task="audio_to_image")
    (tmp_path / "species").mkdir()
    df.to_csv(tmp_path / "species" / src.name, index=False)
    with pytest.raises(ValueError, match="^Unknown task: audio_to_image$"):
        authors_evaluate_csv(tmp_path / "species" / src.name, setup["root"] / "feats", "seen")


def test_authors_numbers_equal_ours(setup):
    n_tasks = n_queries = n_short = 0
    for split, level, code, path, ours, frame in each_task(setup):
        n_cand = int(frame.candidates_taxa.map(len).max())
        assert (frame.candidates_taxa.map(len) == n_cand).all()
        ks = runnable_ks(n_cand)
        if ks != KS:        # the authors' script stops here; ours counts every candidate within the top 10
            n_short += 1
            with pytest.raises(RuntimeError, match="out of range"):
                authors_evaluate_csv(path, setup["root"] / "feats", split, ks=KS)
            assert ours.topk(max(KS)) == 100.0
        theirs = authors_evaluate_csv(path, setup["root"] / "feats", split, ks=ks)
        where = f"{split} {level} {code}"
        assert theirs["task"] == code and theirs["level"] == level
        assert theirs["n"] == ours.n_scored == ours.n_rows == len(frame), where
        assert len(ours.skips) == 0, where
        for k in ks:
            assert 100 * theirs[f"Top@{k}"] == pytest.approx(ours.topk(k), rel=0, abs=1e-9), f"{where} Top@{k}"
        mine = dict(zip(ours.queries.query_id.tolist(), ours.queries["rank"].tolist()))
        assert set(mine) == set(theirs["rows"]), where
        for qid, hit in theirs["rows"].items():
            assert hit == {k: mine[qid] <= k for k in ks}, f"{where} query {qid}"
        n_tasks, n_queries = n_tasks + 1, n_queries + theirs["n"]
    assert n_tasks == 36 and n_short == 12
    assert n_queries == sum(len(t) for b in setup["benches"].values() for t in b.tasks.values())
    summary = pd.concat([r.summary() for r in setup["ours"].values()])
    assert 5 < summary.top1.mean() < 95                      # informative features: not a trivial agreement


def test_shuffled_candidate_lists_change_the_authors_numbers(setup, tmp_path):
    "The comparison can fail: gallery lists moved to other candidates within each row change the authors' Top-k."
    src = Path(authors_task_csv_paths(setup["root"] / "bench" / "seen")["species"]["A2I"])
    df = pd.read_csv(src)
    rotate = lambda groups: groups[1:] + groups[:1]          # candidate c gets the gallery list of candidate c + 1
    df["candidates_target_ids"] = [json.dumps(rotate(json.loads(s))) for s in df.candidates_target_ids]
    (tmp_path / "species").mkdir()
    df.to_csv(tmp_path / "species" / src.name, index=False)
    theirs = authors_evaluate_csv(tmp_path / "species" / src.name, setup["root"] / "feats", "seen")
    ours = setup["ours"]["seen"].results[("species", "A->I")]
    assert theirs["n"] == ours.n_scored
    assert any(100 * theirs[f"Top@{k}"] != pytest.approx(ours.topk(k), abs=1e-9) for k in KS)
    assert 100 * theirs["Top@1"] < ours.topk(1) - 10


def _rank_by_rule(qv, groups, vec, missing, gt_idx, zero_fill: bool):
    "1 + candidates scoring above the correct one; a group's score: max dot over its ids; missing ids: 0 or left out."
    s = []
    for ids in groups:
        dots = [0.0 if i in missing else float(qv @ vec[i]) for i in ids] if zero_fill else \
               [float(qv @ vec[i]) for i in ids if i not in missing]
        s.append(max(dots, default=float("-inf")))
    return 1 + sum(x > s[gt_idx] for x in s)


def test_missing_features_authors_use_zeros_we_skip_and_count(setup, tmp_path):
    """With a few audio and image features missing: the authors score every row (n = rows), we score the rest and
    count what we skip; rows untouched by a missing item agree exactly; rows with a missing gallery item follow each
    side's rule (authors: the missing item scores 0 in its taxon's max; ours: it is left out, -inf if none is left)."""
    bench, feats = setup["benches"]["seen"], setup["feats"]["seen"]
    a_ids, i_ids = sorted(bench.indices["audio"].id), sorted(bench.indices["image"].id)
    image_species = bench.tasks[("species", "image", "audio")].set_index("query_payload_id").correct_taxon
    bare = image_species.value_counts().idxmin()                                    # a species left without images
    drop = {"audio": set(a_ids[10:13]), "image": {*i_ids[10:13], *image_species.index[image_species == bare]}, "text": set()}
    save_feature_bank(feats, tmp_path / "seen", drop)
    partial = {**feats, "audio": without(feats["audio"], drop["audio"]), "image": without(feats["image"], drop["image"])}
    ours_all = evaluate_benchmark(bench, partial)
    affected, skip_counts = 0, np.zeros(2, int)
    for (level, q, g), frame in bench.tasks.items():
        ks = runnable_ks(int(frame.candidates_taxa.map(len).max()))
        ours = ours_all.results[(level, direction_name(q, g))]
        theirs = authors_evaluate_csv(setup["root"] / "bench" / "seen" / task_path(level, q, g), tmp_path, "seen", ks=ks)
        gal = feats[g][level] if g == "text" else feats[g]
        qf = feats[q][level] if q == "text" else feats[q]
        vec, qvec = dict(zip(gal.ids.tolist(), gal.vectors)), dict(zip(qf.ids.tolist(), qf.vectors))
        mq, mg = drop[q], drop[g]
        no_query = frame.query_payload_id.isin(mq)
        no_gallery = [not any(i not in mg for i in groups[c.index(t)]) for groups, c, t in
                      zip(frame.candidates_target_ids, frame.candidates_taxa, frame.correct_taxon)]
        skipped = no_query | (~no_query & np.array(no_gallery))
        assert theirs["n"] == len(frame)                                       # the authors score every row
        assert ours.n_scored == len(frame) - skipped.sum()
        assert ours.skips.counts().get("missing_query_feature", 0) == no_query.sum()
        assert ours.skips.counts().get("correct_taxon_without_gallery_features", 0) == (~no_query & np.array(no_gallery)).sum()
        skip_counts += [no_query.sum(), (~no_query & np.array(no_gallery)).sum()]
        mine = dict(zip(ours.queries.query_id.tolist(), ours.queries["rank"].tolist()))
        for (_, r), gone in zip(frame.iterrows(), skipped):
            hit = theirs["rows"][r.query_payload_id]
            if r.query_payload_id in mq: continue                              # all-zero scores: topk's tie order
            touched = any(i in mg for ids in r.candidates_target_ids for i in ids)
            if not touched:
                assert hit == {k: mine[r.query_payload_id] <= k for k in ks}
                continue
            affected += 1
            gt = r.candidates_taxa.index(r.correct_taxon)
            qv = qvec[r.query_payload_id]
            zero = _rank_by_rule(qv, r.candidates_target_ids, vec, mg, gt, zero_fill=True)
            assert hit == {k: zero <= k for k in ks}
            if not gone:
                left_out = _rank_by_rule(qv, r.candidates_target_ids, vec, mg, gt, zero_fill=False)
                assert mine[r.query_payload_id] == left_out
    assert affected > 0 and (skip_counts > 0).all()        # both kinds of skipped row occur, and rows with a missing item


def test_authors_script_assumes_512_d_zeros_when_the_first_query_and_lowest_gallery_ids_lack_features(setup, tmp_path):
    """A quirk of the authors' zero vectors: their size is the feature size of the query first in set order (the lowest
    id here), else of the gallery vectors read so far, else 512; with the lowest query and gallery ids missing, the
    512-d zeros do not stack with the 16-d features and their script raises."""
    bench, feats = setup["benches"]["seen"], setup["feats"]["seen"]
    drop = {"audio": set(sorted(bench.indices["audio"].id)[:3]), "image": set(sorted(bench.indices["image"].id)[:3])}
    save_feature_bank(feats, tmp_path / "seen", drop)
    path = setup["root"] / "bench" / "seen" / task_path("species", "image", "audio")
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        authors_evaluate_csv(path, tmp_path, "seen")
    assert evaluate_benchmark(bench, {**feats, "audio": without(feats["audio"], drop["audio"]),
                                      "image": without(feats["image"], drop["image"])}).results[("species", "I->A")].n_scored
