"""A real HTTP server on 127.0.0.1 that answers as a test scripts it and records what it got.

It stands in for a service that misbehaves (401, 503, a body that is not JSON, an answer
that never comes), which the real server cannot be made to do on demand.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    """What the server answers on one path: a status, a body (JSON if not bytes), a delay."""

    status: int = 200
    body: object = field(default_factory=dict)
    delay_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    authorization: str | None
    body: bytes = b""


class ScriptedService:
    """Answer each path as ``answers[path]`` says (404 otherwise); record every request."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.seen: list[Seen] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def reply(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                service.seen.append(Seen(self.command, path, self.headers.get("Authorization"),
                                         body))  # fmt: skip
                answer = service.answers.get(path, Answer(404, {"error": "no such route"}))
                time.sleep(answer.delay_seconds)
                reply = answer.body if isinstance(answer.body, bytes) else json.dumps(
                    answer.body).encode()  # fmt: skip
                try:
                    self.send_response(answer.status)
                    for name, value in {"Content-Type": "application/json",
                                        **answer.headers}.items():  # fmt: skip
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test): nothing to answer

            do_GET = do_POST = reply  # noqa: N815 (http.server's naming)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)  # fmt: skip

    def __enter__(self) -> ScriptedService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, path: str) -> list[object]:
        """Return the JSON body of every request *path* received, parsed, in order."""
        return [json.loads(seen.body) for seen in self.seen if seen.path == path]

    def authorizations(self, path: str) -> list[str | None]:
        """Return the Authorization header of every request *path* received, in order."""
        return [seen.authorization for seen in self.seen if seen.path == path]


# A /rollout report whose canary wins on live feedback (what `rollout promote` acts on).
def rollout_report(champion: str = "aaaaaaaaaaaa", canary: str = "bbbbbbbbbbbb") -> dict:
    """Return a ``/rollout`` answer in which *canary* beats *champion* on 50 labelled rows."""
    return {
        "champion": {"version": champion, "quality": {"labelled": 50, "mae": 1.0}},
        "canary": {"version": canary, "fraction": 0.5,
                   "quality": {"labelled": 50, "mae": 0.9}},
        "shadow": None,
    }  # fmt: skip
