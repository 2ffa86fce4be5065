"""The production server: granian (a Rust HTTP server) running the app over RSGI.

``python -m cookbook.web.server`` is what ``make serve``, the image and every deploy
recipe start. The master process loads, verifies and probes the model once (as
gunicorn's ``preload_app`` did) and forks the workers, so they share the model's pages
and the reload generation. Each worker reads requests in granian's event loop and hands
only complete requests to the unchanged WSGI app (``cookbook.web.rsgi``).

Settings come from the environment (``ServerSettings``): ``PORT``, ``WEB_CONCURRENCY``,
``MAX_PENDING``, ``MAX_CONNECTIONS``, ``READ_TIMEOUT``, ``WORKER_LIFETIME``,
``WORKER_MAX_RSS_MB``, ``GRACEFUL_TIMEOUT``, ``LOG_LEVEL``, ``HOT_PATH`` (0 sends every
request through Flask, 1 answers ``/predict`` straight from RSGI: ``cookbook.web.hot_path``).
HTTP/1.1 only: hyper's header read timer then starts when a connection is accepted, so a
connection that sends nothing is closed after ``READ_TIMEOUT`` like one that stalls
mid-request (in granian's ``auto`` mode no timer runs until the first byte arrives).
Native thread pools get one thread (``cookbook.web.threadpools``) before the model loads.
SIGHUP reloads the model (verified and probed in the master first; a refused model
keeps the old one serving), then granian replaces the workers one by one. SIGTERM and
Ctrl-C stop gracefully. ``gunicorn -c gunicorn.conf.py app:app`` still works behind a
buffering proxy.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from cookbook.core.settings import env_number
from cookbook.web import request_log
from cookbook.web.rsgi import Limits, WSGIOverRSGI
from cookbook.web.threadpools import limit_native_threads

log = logging.getLogger(request_log.SERVICE_LOGGER)


@dataclass(frozen=True)
class ServerSettings:
    """The production server's settings, read from the environment."""

    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 2
    # Complete requests allowed to wait for a worker's app thread before 503 (per worker).
    max_pending: int = 64
    # Open connections a worker holds, idle ones included; more wait in the listen queue.
    max_connections: int = 4096
    # A request's headers and its body must each arrive within this many seconds.
    read_timeout_seconds: int = 10
    # Workers are replaced after this many seconds (jittered by granian), bounding memory.
    worker_lifetime_seconds: int = 6 * 3600
    # A worker whose memory grows past this many MiB is replaced (checked every 30 s).
    worker_max_rss_mb: int = 512
    # On SIGTERM, in-flight requests get this long before workers are killed.
    graceful_timeout_seconds: int = 20
    log_level: str = "info"
    # Answer POST /predict without Flask (cookbook.web.hot_path); HOT_PATH=0: Flask answers all.
    hot_path: bool = True

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> ServerSettings:
        """Return the settings in *environ* (default ``os.environ``); raise ValueError."""
        env = os.environ if environ is None else environ
        defaults = cls()

        def number(name: str, default: int) -> int:
            return env_number(env, name, default, kind=int, minimum=1)

        return cls(
            host=env.get("HOST", defaults.host),
            port=number("PORT", defaults.port),
            workers=number("WEB_CONCURRENCY", defaults.workers),
            max_pending=number("MAX_PENDING", defaults.max_pending),
            max_connections=number("MAX_CONNECTIONS", defaults.max_connections),
            read_timeout_seconds=number("READ_TIMEOUT", defaults.read_timeout_seconds),
            worker_lifetime_seconds=number("WORKER_LIFETIME", defaults.worker_lifetime_seconds),
            worker_max_rss_mb=number("WORKER_MAX_RSS_MB", defaults.worker_max_rss_mb),
            graceful_timeout_seconds=number("GRACEFUL_TIMEOUT", defaults.graceful_timeout_seconds),
            log_level=env.get("LOG_LEVEL", defaults.log_level).lower(),
            hot_path=env_number(env, "HOT_PATH", 1, kind=int, minimum=0) != 0,
        )


# The RSGI application the workers serve; set by ``main`` in the master before forking.
application: WSGIOverRSGI | None = None
# Each worker listens on its own socket (SO_REUSEPORT) with a queue this long, for the
# connections it has not taken yet; Linux caps it at net.core.somaxconn.
LISTEN_BACKLOG = 4096
# File descriptors a worker keeps for itself (listener, logs, capture store, model files).
RESERVED_FILES = 64


def raise_open_files_limit() -> None:
    """Raise this process's soft limit of open files to its hard limit (workers inherit it).

    Every connection is a file descriptor: the common default of 1024 would cap a worker at
    about a thousand connections, idle ones included.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        # A container may forbid it: then the limit stays what it was.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def connections_per_worker(settings: ServerSettings, open_files: int) -> int:
    """Return how many connections a worker may hold: MAX_CONNECTIONS, within the file limit."""
    room = max(1, open_files - RESERVED_FILES)
    if open_files != resource.RLIM_INFINITY and settings.max_connections > room:
        log.warning(
            f"MAX_CONNECTIONS={settings.max_connections} is more than the open-file limit "
            f"({open_files}) allows: each worker holds at most {room} connections."
        )
        return room
    return settings.max_connections


def worker_alive(process: Any) -> bool:
    """Return whether the worker *process* still runs, told by its sentinel, never by a race.

    granian reaps each worker from two threads: a watcher blocked in ``join()`` and, on
    stop, the stop loop's ``join(timeout)``. When the watcher wins the ``waitpid`` but has
    not yet recorded the exit code, multiprocessing reports the worker alive; granian waits
    1 ms for the record, then logs "Killing worker-N after it refused to gracefully stop"
    about a worker that had exited on time. The sentinel (a pipe the worker holds open
    until it exits) cannot be raced that way.
    """
    from multiprocessing.connection import wait

    return process.is_alive() and not wait([process.sentinel], 0)


def stop_while_starting() -> None:
    """In a forked worker, exit at once on SIGTERM or SIGINT until granian takes the signals.

    A worker inherits the master's handlers, which only set the master's own stop flag, so
    a SIGTERM that arrived before the worker installed its own (between the fork and its
    event loop: a worker that has served nothing) was lost, and the master killed the worker
    after GRACEFUL_TIMEOUT. granian's loop handlers replace these once the worker serves.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: os._exit(0))


def prepare_metrics_folder() -> None:
    """Share Prometheus samples between workers through a fresh folder of files.

    prometheus_client picks its multi-process mode when it is imported, so the folder is
    set before the app is.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")
        return
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.unlink(os.path.join(folder, name))


def log_serving_form(flask_app: Any) -> None:
    """Log which form serves the loaded model: folded, ONNX, or its joblib file and why."""
    from cookbook.lifecycle.artifacts import serving_description
    from cookbook.web.served import service_state

    predictor = service_state(flask_app).served.predictor
    log.info(f"Serving model {predictor.version} from its {serving_description(predictor)}")


def build(settings: ServerSettings) -> Any:
    """Load the app (model verified and probed) and return the configured granian server."""
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.server import Server

    from cookbook.web.factory import create_app
    from cookbook.web.hot_path import HotPath

    class CookbookServer(Server):
        """granian's server, which tells a worker that exited from one that did not."""

        def _spawn_worker(self, idx: int, target: Any, callback_loader: Any) -> Any:
            worker = super()._spawn_worker(idx, target, callback_loader)
            worker.is_alive = lambda: worker_alive(worker.inner)
            return worker

    flask_app = create_app()
    log_serving_form(flask_app)
    rsgi_app = WSGIOverRSGI(
        flask_app,
        Limits(body_timeout_seconds=settings.read_timeout_seconds,
               max_pending=settings.max_pending),
        HotPath(flask_app) if settings.hot_path else None,
    )  # fmt: skip
    # The workers import this module by name (under ``python -m`` this file is __main__).
    importlib.import_module(__spec__.name if __spec__ else __name__).application = rsgi_app
    server = CookbookServer(
        "cookbook.web.server:application",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.RSGI,
        workers=settings.workers,
        runtime_threads=1,
        # HTTP/1.1 only, so hyper's header timer runs from the accept: see the docstring.
        http=HTTPModes.http1,
        websockets=False,
        backlog=LISTEN_BACKLOG,
        # granian holds one of these permits per open connection, idle ones included.
        backpressure=connections_per_worker(
            settings, resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        ),
        # uvloop: the event loop the app runs in; measured faster than asyncio's own here.
        loop=Loops.uvloop,
        http1_settings=HTTP1Settings(
            header_read_timeout=settings.read_timeout_seconds * 1000, keep_alive=True
        ),
        log_enabled=True,
        log_level=settings.log_level,
        log_dictconfig=granian_logging(settings.log_level),
        respawn_failed_workers=True,
        respawn_interval=0.5,
        workers_lifetime=settings.worker_lifetime_seconds,
        workers_max_rss=settings.worker_max_rss_mb,
        workers_kill_timeout=settings.graceful_timeout_seconds,
    )

    @server.on_startup
    def take_over_sighup() -> None:
        # granian's own SIGHUP replaces every worker, which resets their queued and
        # keep-alive connections. Here SIGHUP verifies and probes the model in the master
        # and bumps the generation the workers follow on their next request: no worker
        # restarts, no connection is lost. A refused model keeps the old one serving.
        signal.signal(signal.SIGHUP, lambda signum, frame: threading.Thread(
            target=reload_on_sighup, args=(flask_app,), daemon=True).start())  # fmt: skip

    return server


def reload_on_sighup(flask_app: Any) -> None:
    """Reload MODEL_PATH for every worker and log what happened (the master's SIGHUP)."""
    from cookbook.web.views import reload_model

    outcome = reload_model(flask_app)
    if outcome.accepted:
        log.info(f"SIGHUP: now serving model {outcome.model_version}")
        log_serving_form(flask_app)
    else:
        log.error(f"SIGHUP: model refused, still serving {outcome.model_version}")


def granian_logging(level: str) -> dict[str, Any]:
    """Return granian's logging config: its messages as JSON lines, like the app's."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "cookbook.web.request_log.JsonFormatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },  # fmt: skip
        "loggers": {
            "_granian": {"handlers": ["console"], "level": level.upper(), "propagate": False},
            "granian.access": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        },
    }


def main() -> None:
    """Serve the model in production until SIGTERM or Ctrl-C."""
    from cookbook.core.errors import MlibError

    try:
        settings = ServerSettings.from_environ()
    except ValueError as exc:
        sys.exit(f"Error: {exc}")
    limit_native_threads()
    prepare_metrics_folder()
    request_log.configure(settings.log_level.upper())
    raise_open_files_limit()  # before the workers fork: they inherit it
    try:
        server = build(settings)
    except MlibError as exc:
        sys.exit(f"Error: {exc}")
    # Keep what was loaded out of the collector's sight: workers never copy those pages.
    gc.freeze()
    os.register_at_fork(after_in_child=stop_while_starting)
    try:
        server.serve()
    finally:
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
        if folder.startswith(tempfile.gettempdir()) and "prometheus-" in folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
