"""Native thread pools get one thread, whether their library loads after the limit or before."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import ROOT

POOLS = (
    "import json\n"
    "from threadpoolctl import threadpool_info\n"
    "print(json.dumps({p['internal_api']: p['num_threads'] for p in threadpool_info()}))\n"
)


@pytest.mark.parametrize("loaded_first", [False, True], ids=["limit first", "libraries first"])
def test_every_native_pool_has_one_thread(loaded_first):
    load = "import numpy, sklearn.ensemble\n"
    limit = "from cookbook.web.threadpools import limit_native_threads\nlimit_native_threads()\n"
    script = (load + limit if loaded_first else limit + load) + POOLS
    env = {"OMP_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "4", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    pools = json.loads(result.stdout or "{}")
    assert "openmp" in pools, result.stderr  # scikit-learn's OpenMP runtime was seen
    assert set(pools.values()) == {1}, pools
