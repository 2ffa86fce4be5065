"""gunicorn settings for production: ``gunicorn -c gunicorn.conf.py app:app``.

Every timeout here is deliberate; docs/operations.md ("Shutdown, timeouts and memory")
explains them.
"""

import gc
import os
import tempfile

from gunicorn.glogging import Logger

from cookbook.web import request_log
from cookbook.web.threadpools import limit_native_threads

# Before the app is preloaded: a native thread pool in the master would hang the forked
# workers' predictions (cookbook.web.threadpools).
limit_native_threads()

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
# The app writes one JSON line per request itself (with the model version and request id),
# so gunicorn's own access log would only repeat it.
accesslog = None
# One server per machine is not a given (tests start several): no shared control socket.
control_socket_disable = True
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")


class JsonLogger(Logger):
    """gunicorn's messages and the app's request lines alike: one JSON object per line.

    A logger class rather than ``logconfig_dict``: with any logging config set, gunicorn
    formats an access-log line for every request even when nothing prints it, which
    costs more than the app's own JSON line.
    """

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(request_log.JsonFormatter())
        request_log.configure(cfg.loglevel.upper())


logger_class = JsonLogger

# prometheus_client picks its multi-process mode when it is imported, so the folder
# must be known before the app is: set it here, in the master, before preloading.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")


def on_starting(server):
    """Start each run with no samples left over from an earlier one.

    The master's own files are kept: the app was preloaded before this hook runs, and
    the master counts what it does too (reloads on SIGHUP, refusals).
    """
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for name in os.listdir(folder):
        if name.endswith(".db") and not name.endswith(own):
            os.unlink(os.path.join(folder, name))


def when_ready(server):
    """Make SIGHUP reload the model in every worker, instead of re-forking from the old one.

    gunicorn's own SIGHUP re-reads this file and forks new workers from the master's
    preloaded app, which still holds the old model. Instead the master loads, verifies
    and probes MODEL_PATH, and bumps the reload generation the workers share.
    """
    if server.cfg.preload_app:
        server.handle_hup = lambda: _reload_model(server)
    # Move everything preloaded out of the garbage collector's sight: the workers' collections
    # then scan only what requests allocate, and never touch (copy) the shared pages.
    gc.freeze()


def _reload_model(server):
    from cookbook.web.views import reload_model

    outcome = reload_model(server.app.wsgi())
    if outcome.accepted:
        server.log.info("SIGHUP: now serving model %s", outcome.model_version)
    else:
        server.log.error("SIGHUP: model refused, still serving %s", outcome.model_version)


def worker_exit(server, worker):
    """Answer the connections already waiting in the listen queue, then let go of the socket.

    The kernel completes TCP handshakes before any worker calls accept(), and when the
    last process closes the listening socket it resets whatever is still queued: clients
    that had sent a whole request. So a stopping worker first takes every queued
    connection (accept() until the queue is empty), closes its listening socket, and
    only then answers the ones it took. New connections are refused from then on,
    which a client can retry elsewhere. Only a connection that lands between the last
    worker's final accept() and its close() can still be reset.
    """
    handle = getattr(worker, "handle", None)  # the sync worker's "serve one connection"
    if handle is None:
        return
    taken = []
    for listener in worker.sockets:
        bound = _BoundAddress(listener.getsockname())
        while True:
            try:
                client, address = listener.accept()  # non-blocking: the workers set it so
            except OSError:  # EAGAIN: the queue is empty
                break
            taken.append((bound, client, address))
        listener.close()
    for bound, client, address in taken:
        client.setblocking(True)
        client.settimeout(5)  # a client that connected but never sends cannot hold the exit
        handle(bound, client, address)


class _BoundAddress:
    """All the sync worker reads of a listener while it answers: the address it was bound to."""

    def __init__(self, address):
        self.address = address

    def getsockname(self):
        return self.address


def child_exit(server, worker):
    """Drop a dead worker's live gauges so /metrics stays true across restarts."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
