"""Every way an HTTP call to the server fails, as one line naming the fix."""

from __future__ import annotations

import json

import httpx

from infertop.engine.backends.server.target import ServerTarget
from infertop.engine.errors import UserError


def server_message(response: httpx.Response) -> str:
    """The error a server put in its body (OpenAI's {"error": {"message"}}, FastAPI's
    {"detail"}, or the text), on one line."""
    try:
        body = json.loads(response.read() or b"null")
    except (ValueError, httpx.HTTPError):
        body = None
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            return " ".join(str(err).split())
    try:
        text = response.text
    except httpx.HTTPError:
        text = ""
    return " ".join(text.split())[:300] or response.reason_phrase


def status_error(response: httpx.Response, target: ServerTarget, what: str) -> UserError:
    """A non-2xx answer to `what` (e.g. "GET /v1/models") as a UserError."""
    code = response.status_code
    if code in (401, 403):
        fix = (
            "the key was refused; pass the server's key with --api-key or $OPENAI_API_KEY"
            if target.api_key
            else "it wants an API key; pass --api-key KEY or set $OPENAI_API_KEY"
        )
        return UserError(f"{target.url} answered {code} to {what}: {fix}")
    return UserError(f"{target.url} answered {code} to {what}: {server_message(response)}")


def transport_error(exc: httpx.HTTPError, target: ServerTarget, what: str) -> UserError:
    """A call that got no complete answer, as a UserError naming the fix."""
    url = target.url
    match exc:
        case httpx.ConnectTimeout():
            line = f"{url} did not accept a connection in {target.timeout:g} s; check the URL"
        case httpx.ConnectError():
            line = f"cannot reach {url} ({_reason(exc)}); start the server or fix --server"
        case httpx.ReadTimeout():
            line = (
                f"{url} sent nothing for {target.timeout:g} s during {what}; it is overloaded "
                "or stuck: raise --server-timeout or lower the batch size"
            )
        case httpx.RemoteProtocolError():
            line = f"{url} closed the connection during {what} (did the server stop?)"
        case _:
            line = f"{url}: {type(exc).__name__} during {what}: {_reason(exc)}"
    return UserError(line)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return " ".join(text.split())[:200]
