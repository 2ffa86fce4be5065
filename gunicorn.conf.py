"""gunicorn settings for production: ``gunicorn -c gunicorn.conf.py app:app``.

Every timeout here is deliberate; the README's "Operations" section explains them.
"""

import os
import tempfile

bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Load the model once in the master; workers share its memory pages after fork.
preload_app = True
# A prediction takes microseconds: a worker stuck for 30 s is broken, not busy.
timeout = 30
# On SIGTERM, in-flight requests get this long to finish before workers are killed.
graceful_timeout = 20
# Behind a load balancer, connections are reused; keep them a little longer than a beat.
keepalive = 5
# Recycle workers now and then (jittered so they never restart together) to bound memory growth.
max_requests = 50_000
max_requests_jitter = 5_000
accesslog = None
# One server per machine is not a given (tests start several): no shared control socket.
control_socket_disable = True
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")

# prometheus_client picks its multi-process mode when it is imported, so the folder
# must be known before the app is: set it here, in the master, before preloading.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")


def on_starting(server):
    """Start each run with no samples left over from an earlier one."""
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.unlink(os.path.join(folder, name))


def child_exit(server, worker):
    """Drop a dead worker's live gauges so /metrics stays true across restarts."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
