"""The production server: granian (a Rust HTTP server) running the app over RSGI.

``python -m cookbook.web.server`` is what ``make serve``, the image and every deploy
recipe start. The master process loads, verifies and probes the model once (as
gunicorn's ``preload_app`` did) and forks the workers, so they share the model's pages
and the reload generation. Each worker reads requests in granian's event loop and hands
only complete requests to the unchanged WSGI app (``cookbook.web.rsgi``).

Settings come from the environment (``ServerSettings``): ``PORT``, ``WEB_CONCURRENCY``,
``MAX_PENDING``, ``READ_TIMEOUT``, ``WORKER_LIFETIME``, ``WORKER_MAX_RSS_MB``,
``GRACEFUL_TIMEOUT``, ``LOG_LEVEL``.
SIGHUP reloads the model (verified and probed in the master first; a refused model
keeps the old one serving), then granian replaces the workers one by one. SIGTERM and
Ctrl-C stop gracefully. ``gunicorn -c gunicorn.conf.py app:app`` still works behind a
buffering proxy.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
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

log = logging.getLogger(request_log.SERVICE_LOGGER)


@dataclass(frozen=True)
class ServerSettings:
    """The production server's settings, read from the environment."""

    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 2
    # Complete requests allowed to wait for a worker's app thread before 503 (per worker).
    max_pending: int = 64
    # A request's headers and its body must each arrive within this many seconds.
    read_timeout_seconds: int = 10
    # Workers are replaced after this many seconds (jittered by granian), bounding memory.
    worker_lifetime_seconds: int = 6 * 3600
    # A worker whose memory grows past this many MiB is replaced (checked every 30 s).
    worker_max_rss_mb: int = 512
    # On SIGTERM, in-flight requests get this long before workers are killed.
    graceful_timeout_seconds: int = 20
    log_level: str = "info"

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
            read_timeout_seconds=number("READ_TIMEOUT", defaults.read_timeout_seconds),
            worker_lifetime_seconds=number("WORKER_LIFETIME", defaults.worker_lifetime_seconds),
            worker_max_rss_mb=number("WORKER_MAX_RSS_MB", defaults.worker_max_rss_mb),
            graceful_timeout_seconds=number("GRACEFUL_TIMEOUT", defaults.graceful_timeout_seconds),
            log_level=env.get("LOG_LEVEL", defaults.log_level).lower(),
        )


# The RSGI application the workers serve; set by ``main`` in the master before forking.
application: WSGIOverRSGI | None = None


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


def build(settings: ServerSettings) -> Any:
    """Load the app (model verified and probed) and return the configured granian server."""
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.server import Server

    import app as service

    flask_app = service.create_app()
    rsgi_app = WSGIOverRSGI(
        flask_app,
        Limits(body_timeout_seconds=settings.read_timeout_seconds,
               max_pending=settings.max_pending),
    )  # fmt: skip
    # The workers import this module by name (under ``python -m`` this file is __main__).
    importlib.import_module(__spec__.name if __spec__ else __name__).application = rsgi_app
    server = Server(
        "cookbook.web.server:application",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.RSGI,
        workers=settings.workers,
        runtime_threads=1,
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
    import app as service

    outcome = service.reload_model(flask_app)
    if outcome.accepted:
        log.info(f"SIGHUP: now serving model {outcome.model_version}")
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
    prepare_metrics_folder()
    request_log.configure(settings.log_level.upper())
    try:
        server = build(settings)
    except MlibError as exc:
        sys.exit(f"Error: {exc}")
    # Keep what was loaded out of the collector's sight: workers never copy those pages.
    gc.freeze()
    try:
        server.serve()
    finally:
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
        if folder.startswith(tempfile.gettempdir()) and "prometheus-" in folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
