"""Native thread pools: one thread per worker, fixed in the master before it forks.

The workers are the service's parallelism (``WEB_CONCURRENCY`` of them, one request at a
time each), so a model's native pools (OpenMP, OpenBLAS, MKL) would only crowd the same
cores. And the master must hold no pool when it forks: GNU OpenMP (libgomp, which
scikit-learn's ``HistGradientBoosting*`` and others run on) keeps its pool's idle threads
in its state; a fork copies the state but not the threads, and the child's first
parallel region waits for them forever. With one thread, libgomp starts no pool.
"""

from __future__ import annotations

import os
import sys

# Each library reads its variable once, when it loads.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
# A native library may already be loaded if one of these is imported.
NATIVE_MODULES = ("numpy", "scipy", "sklearn")


def limit_native_threads() -> None:
    """Give every native thread pool one thread, in this process and the ones it starts.

    Call it at the entry point, before the model (and its libraries) load: a value set
    beforehand (``OMP_NUM_THREADS=4``) is overridden, since a pool in the master would
    hang the forked workers. Libraries already loaded are limited through threadpoolctl
    (for OpenMP, in the calling thread: the one that forks).
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    if any(name in sys.modules for name in NATIVE_MODULES):
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
