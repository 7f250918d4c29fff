"""Speed of the vectorised benchmark evaluator against a per-query-row loop of the same protocol.

    python bench/benchmark_eval.py [--queries 10000] [--taxa 2000] [--candidates 100] [--dim 64] [--threads 1,2]

One synthetic task in the authors' format: `--queries` rows of `--candidates` candidate taxa, each
taxon with 1..5 gallery items (its gallery list is the same in every row, as in the released
benchmark), features quantised so that every dot product is exact in float32 (both sides must then
agree bit for bit, ties included). The task is written with `biovita_nb.formats.write_benchmark` and
read back with `biovita_nb.formats.read_benchmark`, which validates every row and returns the JSON
columns as Python lists. Reading is shared by both sides and timed on its own.

Both sides start from that frame (Python lists) and the features, and produce, for every query,
the rank of its correct taxon (list-order tie-break) and its top-ranked wrong taxon:
  * loop      : one query row at a time: per candidate taxon, the max similarity over its gallery
                items (NumPy), then the rank (the released scripts' protocol, without their zero-fill);
  * evaluator : `task_arrays` (lists -> padded arrays of gallery-list codes: the distinct list objects,
                found by identity) + `evaluate_task` with its CPU default, method="fused" (a compiled
                kernel, rows in parallel on torch's threads: per row only the dot products with its
                candidates' gallery items, max per list, rank). Also timed: scoring alone on arrays
                converted once (the case of several models on one benchmark, where the conversion is
                paid once), and, for information, method="segment" (the GPU default: one dense matrix
                product per chunk of queries with every listed gallery item).
Results are asserted identical; ratios are measured in this one run (best of --repeat for the
evaluator, best of --loop-repeat for the loop), with torch's thread count as given. The machine's load average
is printed before and after: other processes on the cores slow both sides, the evaluator's
threads most (with more busy threads than cores, 2 torch threads can be slower than 1). With one
torch thread the ratio of CPU times (process_time) is printed as well: it is less sensitive to load.
"""
import argparse, json, os, tempfile, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch

from biovita_nb.formats import BenchmarkFolder, read_benchmark, write_benchmark
from biovita_nb.formats import Features
from biovita_nb.evaluate import evaluate_task, task_arrays
GOAL = 50


def make_benchmark(n_queries, n_taxa, n_cand, dim, seed=0):
    "A one-task benchmark (audio -> image, species level) with its features."
    rng = np.random.default_rng(seed)
    taxa = np.array([f"Genus{i // 4:04d} species{i:05d}".replace("0", "o").replace("1", "l") for i in range(n_taxa)], dtype=object)
    sizes = rng.integers(1, 6, size=n_taxa)
    g_ids = np.arange(100_000, 100_000 + int(sizes.sum()))
    gal = np.empty(n_taxa, dtype=object)
    gal[:] = [g_ids[s - n: s].tolist() for s, n in zip(np.cumsum(sizes), sizes)]
    cand = np.stack([rng.choice(n_taxa, n_cand, replace=False) for _ in range(n_queries)])
    frame = pd.DataFrame(dict(task="audio_to_image", taxon_level="species", query_payload_id=np.arange(n_queries),
                              candidates_taxa=taxa[cand].tolist(), candidates_target_ids=gal[cand].tolist(),
                              correct_taxon=taxa[cand[np.arange(n_queries), rng.integers(n_cand, size=n_queries)]],
                              taxon_class="Aves"))
    def unit(n):   # L2-normalised, then on a 2**-11 grid: every dot product is exact in float32
        v = rng.standard_normal((n, dim)); v /= np.linalg.norm(v, axis=1, keepdims=True)
        return (np.round(v * 2048) / 2048).astype(np.float32)
    indices = {"audio": pd.DataFrame({"id": np.arange(n_queries), "file_path": [f"audio/{i}.wav" for i in range(n_queries)]}),
               "image": pd.DataFrame({"id": g_ids, "file_path": [f"image/{i}.jpg" for i in g_ids]})}
    bench = BenchmarkFolder(indices, {("species", "audio", "image"): frame})
    return bench, Features(np.arange(n_queries), unit(n_queries), "audio"), Features(g_ids, unit(len(g_ids)), "image")


def loop_evaluate(frame, query, gallery):
    "One query row at a time (list-order ties): {query id: (rank, top-ranked wrong taxon)}."
    qpos = {int(i): k for k, i in enumerate(query.ids)}
    gpos = {int(i): k for k, i in enumerate(gallery.ids)}
    G, Qv = gallery.vectors, query.vectors
    out = {}
    for qid, names, lists, correct in zip(frame.query_payload_id, frame.candidates_taxa, frame.candidates_target_ids,
                                          frame.correct_taxon):
        if int(qid) not in qpos: continue
        q = Qv[qpos[int(qid)]]
        scores = []
        for ids in lists:
            rows = [gpos[i] for i in ids if i in gpos]
            scores.append((G[rows] @ q).max() if rows else -np.inf)
        scores = np.array(scores)
        c = names.index(correct)
        rank = 1 + int((scores > scores[c]).sum()) + int((scores[:c] == scores[c]).sum())
        wrong = np.where(np.arange(len(names)) == c, -np.inf, scores)
        out[int(qid)] = (rank, names[int(np.argmax(wrong))])
    return out


def timed(f, repeat=1, clock=time.perf_counter):
    best = float("inf")
    for _ in range(repeat):
        t = clock(); out = f(); best = min(best, clock() - t)
    return out, best


def load() -> str:
    return "load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def as_dict(res):
    return {int(q): (int(k), w) for q, k, w in zip(res.queries.query_id, res.queries["rank"], res.queries.top_wrong_taxon)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--taxa", type=int, default=2_000)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--threads", default="1,2", help="torch thread counts to time the evaluator with")
    ap.add_argument("--repeat", type=int, default=5, help="the evaluator's time: best of this many runs")
    ap.add_argument("--loop-repeat", type=int, default=3, help="the loop's time: best of this many runs")
    a = ap.parse_args()
    bench, qf, gf = make_benchmark(a.queries, a.taxa, a.candidates, a.dim)
    key = ("species", "audio", "image")
    with tempfile.TemporaryDirectory() as d:
        folder = write_benchmark(bench, Path(d) / "bench")
        back, t_read = timed(lambda: read_benchmark(folder, n_candidates=a.candidates))
    frame = back.tasks[key]
    assert len(frame) == a.queries and len(back.report) == 0
    print(f"task: {a.queries} queries x {a.candidates} candidates, {a.taxa} taxa, {len(gf)} gallery items (1-5 per taxon), "
          f"dim {a.dim}; torch {torch.__version__}, intra-op threads available {torch.get_num_threads()}")
    print(load())
    print(f"shared: formats.read_benchmark (read CSV + validate every row + decode JSON): {t_read:7.3f} s")
    walls, cpus = [], []
    for _ in range(a.loop_repeat):                 # best of --loop-repeat, as the evaluator is timed best of --repeat
        w, c = time.perf_counter(), time.process_time()
        ref = loop_evaluate(frame, qf, gf)
        walls.append(time.perf_counter() - w); cpus.append(time.process_time() - c)
    t_loop, t_loop_cpu = min(walls), min(cpus)
    print(f"loop over query rows (from the read lists), best of {a.loop_repeat}      : {t_loop:7.3f} s  (CPU {t_loop_cpu:.3f} s)")
    evaluate_task(task_arrays(frame), qf, gf)      # compiles the fused kernel (numba), or loads it from numba's cache
    best = 0.0
    for threads in map(int, a.threads.split(",")):
        torch.set_num_threads(threads)
        res, t_eval = timed(lambda: evaluate_task(task_arrays(frame), qf, gf), a.repeat)
        arrays, t_arrays = timed(lambda: task_arrays(frame), a.repeat)
        res2, t_score = timed(lambda: evaluate_task(arrays, qf, gf), a.repeat)
        res3, t_dense = timed(lambda: evaluate_task(arrays, qf, gf, method="segment"), a.repeat)
        assert len(ref) == a.queries and as_dict(res) == ref and as_dict(res2) == ref and as_dict(res3) == ref, "results differ"
        best = max(best, t_loop / t_eval)
        print(f"[torch threads {threads}] ranks and top-ranked wrong taxa identical for all {len(ref)} queries "
              f"(Top-1 {res.topk(1):.2f}%, Top-5 {res.topk(5):.2f}%)")
        print(f"  evaluator, lists -> arrays -> scores -> ranks : {t_eval:7.3f} s  (task_arrays {t_arrays:.3f} s, "
              f"scoring {t_score:.3f} s)   speed-up vs loop {t_loop / t_eval:6.1f}x")
        print(f"  evaluator, scoring arrays converted once      : {t_score:7.3f} s   speed-up vs loop {t_loop / t_score:6.1f}x")
        print(f"  for information, method='segment' (dense, GPU default), scoring only: {t_dense:.3f} s")
        if threads == 1:
            _, c_eval = timed(lambda: evaluate_task(task_arrays(frame), qf, gf), a.repeat, time.process_time)
            print(f"  CPU time, for information: evaluator {c_eval:.3f} s, loop {t_loop_cpu:.3f} s: {t_loop_cpu / c_eval:.1f}x")
        print(f"  from CSV, for information: read {t_read:.3f} s + evaluator {t_eval:.3f} s = {t_read + t_eval:.3f} s "
              f"(loop: {t_read + t_loop:.3f} s, {(t_read + t_loop) / (t_read + t_eval):.1f}x)")
    print(load())
    print(f"goal >= {GOAL}x (evaluator incl. conversion vs loop, best thread setting): {best:.1f}x -> "
          f"{'met' if best >= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
