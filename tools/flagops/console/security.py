"""Who may talk to the console: loopback by default, a session token and same-origin on writes.

The console edits the operator's clone, so a page on another site must not be able to make the
browser write through it (cross-site request forgery), and a page on a rebound DNS name must
not be able to read it. Every request's ``Host`` must name the loopback interface (unless
remote access was asked for); every write must be a same-origin JSON request carrying the
session's token in a header, which a cross-site page can neither read nor send without a CORS
preflight the console never answers. With ``--allow-remote`` a token chosen by the operator
also guards every read: the first visit passes it as ``?token=``, then a cookie carries it.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from starlette.datastructures import URL
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import UsageError

__all__ = ["Guard", "GuardMiddleware", "TOKEN_HEADER", "check_bind_host", "is_loopback", "new_token"]

#: The header every write carries the session token in (set by console.js).
TOKEN_HEADER = "x-flagops-token"
#: The cookie that carries the operator's token in remote mode.
COOKIE = "flagops_token"
#: A token chosen by the operator must be at least this long (it is the only guard remotely).
MIN_REMOTE_TOKEN = 16
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_token() -> str:
    """A fresh per-session token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (brackets allowed)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind_host(host: str, *, allow_remote: bool, token: Optional[str]) -> None:
    """Refuse to listen beyond loopback unless remote access is asked for with a token."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise UsageError(f'refusing to listen on "{host}": the console edits this clone and is meant '
                         "for this machine only (127.0.0.1)",
                         hint="pass --allow-remote --token TOKEN (or FLAGOPS_UI_TOKEN) to serve other machines")
    if not token:
        raise UsageError(f'--allow-remote on "{host}" needs a token, the only guard of a remote console',
                         hint=f"pass --token with at least {MIN_REMOTE_TOKEN} random characters "
                              "(or set FLAGOPS_UI_TOKEN)")
    if len(token) < MIN_REMOTE_TOKEN:
        raise UsageError(f"the token is too short ({len(token)} characters); use at least {MIN_REMOTE_TOKEN}")


def _host_name(host_header: str) -> str:
    """The name part of a ``Host`` header: ``127.0.0.1:8450`` -> ``127.0.0.1``, ``[::1]:80`` -> ``::1``."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


@dataclass(frozen=True)
class Guard:
    """The checks, as plain functions of a request's headers (so they are easy to reason about)."""

    token: str
    remote: bool = False

    def same_token(self, given: Optional[str]) -> bool:
        return given is not None and hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8"))

    def refuse_host(self, host_header: str) -> Optional[str]:
        """Why a request's Host is refused (DNS rebinding), or None."""
        if not host_header:
            return "the request has no Host header"
        if not self.remote and not is_loopback(_host_name(host_header)):
            return f'the Host "{host_header}" is not this machine; open the console at 127.0.0.1'
        return None

    def refuse_write(self, method: str, headers: dict[str, str]) -> Optional[str]:
        """Why a write is refused (cross-site, no token, not JSON), or None."""
        host = headers.get("host", "")
        origin = headers.get("origin")
        if origin is None or origin == "null":
            return "a write must come from the console's own page (no Origin header)"
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
            return f'cross-site write refused: the request comes from "{origin}", not from the console'
        site = headers.get("sec-fetch-site")
        if site is not None and site != "same-origin":
            return f"cross-site write refused (Sec-Fetch-Site: {site})"
        if not self.same_token(headers.get(TOKEN_HEADER)):
            return "the session token is missing or wrong; reload the console page"
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if method not in SAFE_METHODS and content_type != "application/json":
            return "a write must be a JSON request"
        return None


class GuardMiddleware:
    """Apply :class:`Guard` to every HTTP request before any endpoint sees it."""

    def __init__(self, app: ASGIApp, guard: Guard):
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        headers = {k.lower(): v for k, v in conn.headers.items()}
        response = self._refusal(conn, scope["method"], headers)
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, conn: HTTPConnection, method: str, headers: dict[str, str]) -> Optional[Response]:
        reason = self.guard.refuse_host(headers.get("host", ""))
        if reason:
            return PlainTextResponse(reason + "\n", status_code=400)
        if self.guard.remote:
            given = conn.query_params.get("token")
            if given is not None and self.guard.same_token(given) and method in SAFE_METHODS:
                # Trade the token in the address for a cookie, and drop it from the address bar.
                target = URL(scope=conn.scope).remove_query_params("token")
                response = RedirectResponse(str(target.path) + (f"?{target.query}" if target.query else ""),
                                            status_code=303)
                response.set_cookie(COOKIE, self.guard.token, httponly=True, samesite="strict")
                return response
            if not self.guard.same_token(conn.cookies.get(COOKIE)):
                return PlainTextResponse("this console needs its token: open it once as /?token=TOKEN\n",
                                         status_code=401)
        if method not in SAFE_METHODS:
            reason = self.guard.refuse_write(method, headers)
            if reason:
                return JSONResponse({"error": reason}, status_code=403)
        return None
