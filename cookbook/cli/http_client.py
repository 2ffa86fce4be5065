"""The CLIs' one HTTP client and its one error policy: a timeout on every call, the status
and the JSON checked, every failure one line.

Every failure is a ``ServiceError``, a ``click.ClickException``: one line on stderr naming
the URL and why (the answer's ``error`` field when it has one), and a non-zero exit, never
a traceback. A refused connection and a 502/503/504 answer are ``Retryable``; a 401 says
which option carries the token. The load generator (``loadgen``) keeps its own keep-alive
connections but words its failures with the functions here. ``--host`` is a service's base
URL or its ``/predict`` URL: ``service_root`` and ``predict_url`` read either.
"""

from __future__ import annotations

import math
import re
import time
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import requests

RETRY_STATUSES = frozenset({502, 503, 504})
# A Retry-After longer than this is not waited for in full: the CLI is interactive.
MAX_RETRY_AFTER_SECONDS = 30.0
# Longer error texts are cut: a broken or hostile server cannot flood the terminal.
MAX_DETAIL_CHARS = 200
API_TOKEN_HINT = "pass --token or set API_TOKEN"


class ServiceError(click.ClickException):
    """A call that failed: one line naming the URL and why; ``reason`` is the why alone."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class Retryable(ServiceError):
    """A failure worth trying again: no connection, or a gateway or overload answer."""

    def __init__(self, message: str, reason: str | None = None,
                 retry_after_seconds: float = 0.0) -> None:  # fmt: skip
        super().__init__(message, reason)
        self.retry_after_seconds = retry_after_seconds


def service_root(host: str) -> str:
    """Return the service's base URL from its base URL or its ``.../predict`` URL."""
    url = host.rstrip("/")
    return url[: -len("/predict")] if url.endswith("/predict") else url


def predict_url(host: str) -> str:
    """Return the ``/predict`` URL of the service *host* names (its base or /predict URL)."""
    return service_root(host) + "/predict"


def cannot_reach(url: str, reason: str) -> str:
    """Return the line for a call that made no connection to *url*."""
    return f"Cannot reach {url}: {reason}"


def not_a_url(url: str) -> str:
    """Return the line for a *url* no request can be sent to."""
    return f"{url!r} is not an http:// or https:// URL"


def refused_token_hint(token_sent: bool, token_hint: str = API_TOKEN_HINT) -> str:
    """Return what a 401 means: the token sent was wrong, or none was sent (*token_hint*)."""
    return "the token was refused" if token_sent else token_hint


def one_line(text: object) -> str:
    """Return *text* on one line, cut to ``MAX_DETAIL_CHARS``."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_DETAIL_CHARS else line[: MAX_DETAIL_CHARS - 1] + "…"


def reason_of(exc: BaseException) -> str:
    """Return the words that name a connection failure (requests nests them deep)."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)|(Failed to resolve '[^']+')", text)
    if match:
        return (match.group(1) or match.group(2)).strip()
    match = re.search(r"\[SSL: \w+\] ([^'\"(]+)", text)
    if match:
        return f"TLS failed: {match.group(1).strip()}"
    return one_line(text) or type(exc).__name__


def retry_after(header: str | None) -> float:
    """Return the seconds a ``Retry-After`` header asks for (0 when absent or a date)."""
    try:
        seconds = float(header or 0)
    except ValueError:
        return 0.0  # the HTTP-date form: the caller's backoff applies
    return 0.0 if math.isnan(seconds) else min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def send(method: str, url: str, *, timeout: float, token: str | None = None,
         body: Any = None) -> requests.Response:  # fmt: skip
    """Send one request (*body* as JSON, *token* as a Bearer token) and return the answer.

    Raise ``Retryable`` when no connection was made and ``ServiceError`` when the URL is
    not one, or no complete answer came within *timeout* seconds. The status is not checked.
    """
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return requests.request(method, url, json=body, headers=headers, timeout=timeout)
    except requests.exceptions.ConnectTimeout:
        reason = f"no connection within {timeout:g} s"
        raise Retryable(cannot_reach(url, reason) + ".", reason) from None
    except requests.exceptions.Timeout:
        reason = f"no answer within {timeout:g} s"
        raise ServiceError(f"{url} did not answer within {timeout:g} s.", reason) from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema) as exc:  # fmt: skip
        raise ServiceError(f"{not_a_url(url)}: {one_line(exc)}",
                           "not a URL") from None  # fmt: skip
    except requests.exceptions.SSLError as exc:  # not retried: it fails the same way again
        reason = reason_of(exc)
        raise ServiceError(cannot_reach(url, reason), reason) from None
    except requests.exceptions.ConnectionError as exc:
        reason = reason_of(exc)
        raise Retryable(cannot_reach(url, reason), reason) from None
    except requests.exceptions.RequestException as exc:  # a broken answer, too many redirects
        reason = reason_of(exc)
        raise ServiceError(f"Cannot read the answer of {url}: {reason}", reason) from None


def call_json(method: str, url: str, *, timeout: float, token: str | None = None,
              body: Any = None, token_hint: str = API_TOKEN_HINT) -> dict[str, Any]:  # fmt: skip
    """Send one request and return its answer, a JSON object, or raise ``ServiceError``.

    An error status raises with the answer's ``error`` field (``Retryable`` for 502, 503
    and 504, with the seconds ``Retry-After`` asks for); a 401 adds *token_hint*.
    """
    response = send(method, url, timeout=timeout, token=token, body=body)
    try:
        answer, is_json = response.json(), True
    except ValueError:  # requests' JSONDecodeError, and a body that is not UTF-8
        answer, is_json = None, False
    status = response.status_code
    if status >= 400:
        error = answer.get("error") if isinstance(answer, dict) else None
        detail = one_line(error if error else response.reason or "no reason given")
        message = f"{url} answered {status}: {detail}"
        if status == 401:
            message = f"{message} ({refused_token_hint(bool(token), token_hint)})"
        if status in RETRY_STATUSES:
            wait = retry_after(response.headers.get("Retry-After"))
            raise Retryable(message, detail, wait)
        raise ServiceError(message, detail)
    if not isinstance(answer, dict):
        kind = "JSON that is not an object" if is_json else "a body that is not JSON"
        content_type = response.headers.get("Content-Type") or "no Content-Type"
        raise ServiceError(f"{url} answered {status} with {kind} ({one_line(content_type)}).")
    return answer


def call_json_retrying(method: str, url: str, *, retries: int, backoff_seconds: float,
                       **call: Any) -> dict[str, Any]:  # fmt: skip
    """Return ``call_json``'s answer, trying again up to *retries* times after a ``Retryable``.

    Only for requests that are safe to send twice. The first retry waits *backoff_seconds*,
    each one after it twice as long, and never less than the answer's ``Retry-After``.
    """
    for attempt in range(retries + 1):
        try:
            return call_json(method, url, **call)
        except Retryable as exc:
            if attempt == retries:
                raise
            time.sleep(max(backoff_seconds * 2**attempt, exc.retry_after_seconds))
    raise AssertionError("unreachable: the last attempt returned or raised")
