"""Benchmark: the IDM re-ranking with and without early abandoning, in one process and one run.

Run ``python benchmarks/bench_idm.py`` (``make bench`` runs it after bench.py). It re-ranks, as notebook
06 does, the 3,200 nearest deskewed training digits (exact L2) of ``--queries`` seeded test digits with
the IDM (warp 2, context 1), and times, each as the best of ``--repeats`` runs:

- the kernel before early abandoning (commit ``BEFORE``, loaded from git; skipped without git);
- the first kernel with early abandoning, at ``keep=6`` (commit ``ABANDONING``: bands of rows with the
  context rows of each band kept per displacement, features of the compared images built in float64
  by numpy; loaded from git);
- the kernel before bands of 6 rows and passes rounded up to the vector width, at ``keep=6`` (commit
  ``PREVIOUS``; loaded from git);
- today's kernel computing every distance (``keep=None``);
- today's kernel keeping the 20 nearest of every prefix (``keep=20``: notebook 06's choices of k);
- today's kernel keeping the 6 nearest (``keep=6``: the final classifier's k).

It prints microseconds per re-ranked pair, the speed-up over the kernel before, the share of pairs
abandoned, and checks that every finite distance and the nearest of every prefix are bit-identical.
Timings vary with the machine's load: the ratios, measured in the same run, are the figures to read.
"""

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mnist_knn.data import deskew, load_mnist, to_uint8
from mnist_knn.engine import idm_distance, kneighbors, nearest_candidates

BEFORE = "4b45625"  # the last commit whose IDM kernel computed every pair in full
ABANDONING = "b73bdd3"  # the last commit with the first early-abandoning kernel
PREVIOUS = "9e765ba"  # the last commit with bands of 4 rows and passes of any length
N_CAND = 3200
TARGET_SPEEDUP = 4.0


def kernel_before(commit):
    """``idm_distance`` as it was at ``commit``, or None when git cannot show it."""
    root = Path(__file__).resolve().parents[1]
    try:
        source = subprocess.run(["git", "show", f"{commit}:mnist_knn/engine/idm.py"], cwd=root,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"cannot load the kernel of {commit} from git ({error}): skipping it.\n")
        return None
    path = Path(tempfile.mkdtemp()) / "idm_before.py"
    path.write_text(source.replace("from .rerank import", "from mnist_knn.engine.rerank import"))
    spec = importlib.util.spec_from_file_location("idm_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.idm_distance


def best_time(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000, help="test digits re-ranked (seeded sample)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    images_train, _ = load_mnist("train")
    images_test, _ = load_mnist("test")
    train, test = to_uint8(deskew(images_train)), to_uint8(deskew(images_test))
    rows = np.sort(np.random.default_rng(0).choice(len(test), args.queries, replace=False))
    _, candidates = kneighbors(train.reshape(len(train), -1), test[rows].reshape(len(rows), -1), N_CAND)
    X_train, X_query = train.astype(np.float32), test[rows].astype(np.float32)

    runs = {}
    before = kernel_before(BEFORE)
    if before is not None:
        runs[f"before early abandoning ({BEFORE})"] = lambda: before(X_train, X_query, candidates)
    first = kernel_before(ABANDONING)
    if first is not None:
        runs[f"first early abandoning ({ABANDONING}), keep=6"] = lambda: first(X_train, X_query, candidates, keep=6)
    previous = kernel_before(PREVIOUS)
    if previous is not None:
        runs[f"previous kernel ({PREVIOUS}), keep=6"] = lambda: previous(X_train, X_query, candidates, keep=6)
    runs["today, every distance (keep=None)"] = lambda: idm_distance(X_train, X_query, candidates)
    for keep in (20, 6):
        runs[f"today, keep={keep}"] = lambda keep=keep: idm_distance(X_train, X_query, candidates, keep=keep)
    # Compile (numba caches to disk) outside the timings.
    idm_distance(X_train[:3], X_query[:1], [[0, 1, 2]], keep=1)
    idm_distance(X_train[:3], X_query[:1], [[0, 1, 2]])
    if before is not None:
        before(X_train[:3], X_query[:1], [[0, 1, 2]])
    for kernel in (first, previous):
        if kernel is not None:
            kernel(X_train[:3], X_query[:1], [[0, 1, 2]], keep=1)

    times, results = {}, {}
    for name, run in runs.items():
        times[name], results[name] = best_time(run, args.repeats)
    pairs = candidates.size
    before_name = f"before early abandoning ({BEFORE})"
    reference = times.get(before_name, times["today, every distance (keep=None)"])  # speed-ups are against this
    full = results["today, every distance (keep=None)"]
    width = max(map(len, times))
    print(f"IDM (warp 2, context 1) re-ranking {N_CAND:,} exact-L2 candidates of {args.queries} deskewed test digits "
          f"({pairs:,} pairs), best of {args.repeats} runs")
    print(f"{'kernel':<{width}}  {'seconds':>8}  {'us/pair':>8}  {'speed-up':>8}  {'abandoned':>9}  exact")
    for name, seconds in times.items():
        D = results[name]
        finite = np.isfinite(D)
        exact = np.array_equal(D[finite], full[finite])
        keep = int(name.rpartition("=")[2]) if "keep=" in name and "None" not in name else None
        if keep is not None:  # the nearest of every tenth prefix, as notebook 06 reads them
            for n in range(keep, N_CAND + 1, N_CAND // 10):
                a = nearest_candidates(full[:, :n], candidates[:, :n], keep)
                b = nearest_candidates(D[:, :n], candidates[:, :n], keep)
                exact &= np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        print(f"{name:<{width}}  {seconds:8.2f}  {1e6 * seconds / pairs:8.2f}  {reference / seconds:8.2f}  "
              f"{1 - finite.mean():9.1%}  {exact}")
    best = times["today, keep=6"]
    if before_name in times:
        print(f"\nkeep=6 against the kernel before: {reference / best:.2f}x fewer microseconds per pair "
              f"(target >= {TARGET_SPEEDUP:.0f}x)")
    else:
        print("\nthe kernel before early abandoning could not be loaded: speed-ups are against today's keep=None")
    if first is not None:
        print(f"keep=6 against the first early-abandoning kernel at keep=6: "
              f"{times[f'first early abandoning ({ABANDONING}), keep=6'] / best:.2f}x")
    if previous is not None:
        print(f"keep=6 against the previous kernel at keep=6: {times[f'previous kernel ({PREVIOUS}), keep=6'] / best:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
