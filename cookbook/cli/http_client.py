"""The CLIs' one HTTP client: a timeout on every call, the status and the JSON checked.

Every failure is a ``ServiceError``, a ``click.ClickException``: one line on stderr naming
the URL and why (the answer's ``error`` field when it has one), and a non-zero exit, never
a traceback. A refused connection and a 502/503/504 answer are ``Retryable``; a 401 says
which option carries the token. ``token_option`` is the ``--token`` of every command that
calls a route behind ``API_TOKEN``.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import requests

RETRY_STATUSES = frozenset({502, 503, 504})
# A Retry-After longer than this is not waited for in full: the CLI is interactive.
MAX_RETRY_AFTER_SECONDS = 30.0
# Longer error texts are cut: a broken or hostile server cannot flood the terminal.
MAX_DETAIL_CHARS = 200
# What an HTTP header value may hold: visible ASCII and spaces (RFC 9110's field-vchar).
HEADER_SAFE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")
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


def check_token(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse a token that cannot travel in an HTTP header (a newline, non-ASCII)."""
    if value is not None and not HEADER_SAFE.fullmatch(value):
        raise click.BadParameter("a token is printable ASCII without surrounding spaces.")
    return value


def token_option(help_text: str = "The service's API_TOKEN, sent as a Bearer token."):
    """Return the ``--token`` option (default: ``API_TOKEN``) every protected call shares."""
    return click.option(
        "--token",
        envvar="API_TOKEN",
        show_envvar=True,
        callback=check_token,
        help=help_text,
    )


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
        raise Retryable(f"Cannot reach {url}: {reason}.", reason) from None
    except requests.exceptions.Timeout:
        reason = f"no answer within {timeout:g} s"
        raise ServiceError(f"{url} did not answer within {timeout:g} s.", reason) from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema) as exc:  # fmt: skip
        raise ServiceError(f"{url!r} is not an http:// or https:// URL: {one_line(exc)}",
                           "not a URL") from None  # fmt: skip
    except requests.exceptions.SSLError as exc:  # not retried: it fails the same way again
        reason = reason_of(exc)
        raise ServiceError(f"Cannot reach {url}: {reason}", reason) from None
    except requests.exceptions.ConnectionError as exc:
        reason = reason_of(exc)
        raise Retryable(f"Cannot reach {url}: {reason}", reason) from None
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
            hint = "the token was refused" if token else token_hint
            message = f"{message} ({hint})"
        if status in RETRY_STATUSES:
            wait = retry_after(response.headers.get("Retry-After"))
            raise Retryable(message, detail, wait)
        raise ServiceError(message, detail)
    if not isinstance(answer, dict):
        kind = "JSON that is not an object" if is_json else "a body that is not JSON"
        content_type = response.headers.get("Content-Type") or "no Content-Type"
        raise ServiceError(f"{url} answered {status} with {kind} ({one_line(content_type)}).")
    return answer
