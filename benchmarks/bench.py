"""Benchmark: our exact search against scikit-learn, faiss and the hardware, in one process and one run.

Run ``python benchmarks/bench.py`` (or ``make bench``, which also installs faiss-cpu). On full MNIST
(10,000 queries x 60,000 training images, k = 10) it times, each as the median of ``--repeats`` runs:

- a bare float32 matrix product of the same shape (the hardware's ceiling for a GEMM-based search), and
  the smaller one our search does (it skips the pixels that are blank in every training or test image);
- our engine, L2: search and vote (uniform, smallest-label rule) -> predictions;
- scikit-learn ``KNeighborsClassifier(algorithm="brute")`` predicting with the same k;
- faiss-cpu ``IndexFlatL2`` (optional: skipped with a message when faiss is not installed);
- our engine with L1 and L3 (scikit-learn's L1 once, its L3 only with ``--sklearn-l3``: ~30 minutes);

then prints the ratios, the peak memory of a full search beyond the data, and whether our predictions
equal scikit-learn's. Timings vary with the machine's load: the ratios, measured in the same run, are
the figures to read.
"""

import argparse
import os
import platform
import statistics
import time
import tracemalloc

import numpy as np

from mnist_knn.data.datasets import load_mnist
from mnist_knn.engine import search
from mnist_knn.engine.distances import thread_count
from mnist_knn.engine.search import kneighbors
from mnist_knn.engine.vote import predict

K = 10
TARGET_L2_VS_GEMM = 1.25
TARGET_L1_L3_SECONDS = 15.0
TARGET_PEAK_BYTES = 1e9


def _median_time(fn, repeats):
    times = []
    result = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _peak_bytes(fn):
    """Peak bytes numpy/python allocate during ``fn()``, starting from a cold work buffer."""
    search.release_buffers()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median reported)")
    parser.add_argument("--queries", type=int, default=10_000, help="number of test digits (default: all)")
    parser.add_argument("--skip-sklearn-l1", action="store_true", help="skip scikit-learn's L1 (~2 min)")
    parser.add_argument("--sklearn-l3", action="store_true", help="also time scikit-learn's L3 (~30 min)")
    args = parser.parse_args(argv)

    X_train, y_train = load_mnist("train")
    X_test, y_test = load_mnist("test")
    X_train = X_train.reshape(len(X_train), -1)
    X_test = X_test.reshape(len(X_test), -1)[: args.queries]
    y_test = y_test[: args.queries]
    n_q, n_t, d = len(X_test), len(X_train), X_train.shape[1]
    print(f"machine: {_cpu_name()}, {os.cpu_count()} cores; numba threads: {thread_count()}")
    print(f"data: {n_q:,} queries x {n_t:,} training images x {d} pixels, k = {K}, "
          f"median of {args.repeats} runs\n")

    rows = {}

    # The hardware's ceiling: the float32 product alone, into a preallocated output.
    A, B = X_test.astype(np.float32), X_train.astype(np.float32)
    out = np.empty((n_q, n_t), dtype=np.float32)
    np.matmul(A, B.T, out=out)  # touch the memory once
    rows["float32 GEMM (ceiling)"], _ = _median_time(lambda: np.matmul(A, B.T, out=out), args.repeats)
    # Our search skips the pixels that are blank in every training or every test image: the product it
    # does is this smaller one. Timed too, so that the cost of exactness alone can be read off.
    inked = search.inked_columns(X_train, X_test)
    A_ink, B_ink = np.ascontiguousarray(A[:, inked]), np.ascontiguousarray(B[:, inked])
    gemm_inked = f"float32 GEMM, {inked.size} inked pixels"
    rows[gemm_inked], _ = _median_time(lambda: np.matmul(A_ink, B_ink.T, out=out), args.repeats)
    del out, A_ink, B_ink

    def ours(metric, p=2):
        def run():
            dist, ind = kneighbors(X_train, X_test, K, metric, p)
            return predict(dist, ind, y_train, K)
        return run

    ours(("euclidean"))()  # compile the kernels outside the timing
    rows["ours, L2 (exact)"], y_ours = _median_time(ours("euclidean"), args.repeats)

    from sklearn.neighbors import KNeighborsClassifier

    def sk(metric, p=2):
        clf = KNeighborsClassifier(n_neighbors=K, algorithm="brute", metric=metric, p=p)
        clf.fit(X_train, y_train)
        return lambda: clf.predict(X_test)

    rows["scikit-learn brute, L2"], y_sk = _median_time(sk("euclidean"), args.repeats)

    try:
        import faiss

        def run_faiss():
            index = faiss.IndexFlatL2(d)
            index.add(B)
            return index.search(A, K)

        rows["faiss IndexFlatL2"], _ = _median_time(run_faiss, args.repeats)
    except ImportError:
        print("faiss-cpu is not installed: skipping faiss (`make bench` installs it).\n")

    rows["ours, L1 (exact)"], y_ours_l1 = _median_time(ours("manhattan"), args.repeats)
    rows["ours, L3 (exact)"], _ = _median_time(ours("minkowski", 3), args.repeats)
    y_sk_l1 = None
    if not args.skip_sklearn_l1:
        rows["scikit-learn brute, L1 (1 run)"], y_sk_l1 = _median_time(sk("manhattan"), 1)
    if args.sklearn_l3:
        rows["scikit-learn brute, L3 (1 run)"], _ = _median_time(sk("minkowski", 3), 1)

    peak = _peak_bytes(ours("euclidean"))
    peak_l3 = _peak_bytes(ours("minkowski", 3))

    gemm = rows["float32 GEMM (ceiling)"]
    width = max(map(len, rows))
    print(f"{'measurement':<{width}}  {'seconds':>8}  {'x GEMM':>7}")
    for name, sec in rows.items():
        print(f"{name:<{width}}  {sec:8.2f}  {sec / gemm:7.2f}")
    l2 = rows["ours, L2 (exact)"]
    print()
    print(f"ours L2 / float32 GEMM      = {l2 / gemm:.2f}  (target <= {TARGET_L2_VS_GEMM})")
    print(f"ours L2 / GEMM of {inked.size} pixels = {l2 / rows[gemm_inked]:.2f}  (the cost of exactness beyond "
          f"the product the search does)")
    print(f"ours L2 / scikit-learn L2   = {l2 / rows['scikit-learn brute, L2']:.2f}")
    if "faiss IndexFlatL2" in rows:
        print(f"ours L2 / faiss             = {l2 / rows['faiss IndexFlatL2']:.2f}  (target <= 1)")
    for name in ("ours, L1 (exact)", "ours, L3 (exact)"):
        print(f"{name:<27} = {rows[name]:.1f} s  (target <= {TARGET_L1_L3_SECONDS:.0f} s)")
    if "scikit-learn brute, L1 (1 run)" in rows:
        print(f"ours L1 / scikit-learn L1   = {rows['ours, L1 (exact)'] / rows['scikit-learn brute, L1 (1 run)']:.3f}")
    print(f"peak memory of a full search beyond the data: L2 {peak / 1e6:.0f} MB, "
          f"L3 {peak_l3 / 1e6:.0f} MB (target < {TARGET_PEAK_BYTES / 1e6:.0f} MB)")
    same = np.array_equal(y_ours, y_sk)
    print(f"predictions equal scikit-learn's (L2, k={K}): {same} "
          f"({int((y_ours != y_sk).sum())} differ); test accuracy {np.mean(y_ours == y_test):.4f}")
    if y_sk_l1 is not None:
        same_l1 = np.array_equal(y_ours_l1, y_sk_l1)
        print(f"predictions equal scikit-learn's (L1, k={K}): {same_l1} ({int((y_ours_l1 != y_sk_l1).sum())} differ)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
