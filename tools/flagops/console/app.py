"""The console's web application (Starlette) and its server (uvicorn).

Pages are rendered on the server with the shared Jinja2 environment; ``console.js`` adds the
live parts (search, palette, editor, preview) and sends every write as a JSON request with the
session token (see :mod:`flagops.console.security`). Every write goes through the same library
call as the matching command (``set``, ``kill``, ``restore``, ``new``, ``delete``), so what
the console saves is exactly what the command line would have written.
"""

from __future__ import annotations

import datetime as _dt
import threading
import webbrowser
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..edit import EditResult, delete_flag, edit_flag, flag_rel, kill_flag, new_flag, restore_flag
from ..errors import FlagopsError, InvalidInputError, RiskyChangeError
from ..render import TEMPLATES_DIR, render
from .pending import change_from_form, digest, preview
from .propose import propose
from .security import Guard, GuardMiddleware, check_bind_host, is_loopback, new_token
from .views import STATES, Workspace

__all__ = ["create_app", "serve"]

ASSETS = {"console.css": "text/css", "console.js": "text/javascript"}


def _problem_dicts(exc: FlagopsError) -> list[dict[str, Any]]:
    problems = exc.problems if isinstance(exc, InvalidInputError) else []
    return [{"path": p.path, "line": p.line, "col": p.col, "rule": p.rule, "severity": p.severity,
             "message": p.message} for p in problems]


def _refused(exc: FlagopsError, status: int = 400) -> JSONResponse:
    body: dict[str, Any] = {"error": exc.message, "hint": exc.hint, "problems": _problem_dicts(exc)}
    return JSONResponse(body, status_code=409 if isinstance(exc, RiskyChangeError) else status)


def _impact(radius: list[Any]) -> dict[str, Any]:
    return {r.environment: r.to_dict(10) for r in radius}


class Console:
    """The endpoints, over one workspace; writes are serialised."""

    def __init__(self, root: Path, token: str):
        self.workspace = Workspace(root)
        self.token = token
        self.root = self.workspace.root
        self.write_lock = threading.Lock()

    # ------------------------------------------------------------------ pages

    def _page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        snap = self.workspace.snapshot()
        palette = [{"key": r["key"], "description": r["description"], "deleted": r["deleted"]}
                   for r in snap.rows + snap.deleted]
        html = render(f"console/{template}", token=self.token, palette=palette, notes=snap.notes,
                      environments=snap.environments, **context)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def index(self, request: Request) -> Response:
        snap = self.workspace.snapshot()
        query = request.query_params.get("q", "")
        shown = set(snap.search(query)["keys"]) if query else None
        return self._page("index.html.j2", title="Feature flags", rows=snap.rows, deleted=snap.deleted,
                          query=query, shown=shown, pending=[r["key"] for r in snap.rows if r["pending"]])

    def flag(self, request: Request) -> Response:
        key = request.path_params["key"]
        snap = self.workspace.snapshot()
        row = snap.row(key)
        history = snap.history.get(key, [])
        if row is None:
            deleted = next((r for r in snap.deleted if r["key"] == key), None)
            if deleted is None:
                return self._page("missing.html.j2", status=404, title=key, key=key)
            return self._page("flag.html.j2", title=key, row=deleted, history=history, base="",
                              schema=None, problems=[])
        path = self.root / flag_rel(key)
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        schemas = snap.repository.schemas
        schema = {"states": STATES, "plans": schemas.plans, "environments": schemas.environments,
                  "partners": snap.partners()}
        return self._page("flag.html.j2", title=key, row=row, history=history, base=digest(text),
                          schema=schema, problems=snap.problems_of(key))

    def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return Response("not found\n", status_code=404, media_type="text/plain")
        return Response((TEMPLATES_DIR / "console" / name).read_bytes(), media_type=ASSETS[name],
                        headers={"Cache-Control": "no-cache"})

    # ------------------------------------------------------------------ reads

    def search(self, request: Request) -> Response:
        return JSONResponse(self.workspace.snapshot().search(request.query_params.get("q", "")))

    def tenants(self, request: Request) -> Response:
        return JSONResponse(self.workspace.snapshot().complete_tenants(request.query_params.get("q", "")))

    # ------------------------------------------------------------------ writes (in a thread)

    def _current_text(self, key: str, base: Optional[str]) -> str:
        path = self.root / flag_rel(key)
        if not path.is_file():
            raise FlagopsError(f'no flag "{key}" in flags/', hint="it was deleted meanwhile; reload the page")
        text = path.read_text(encoding="utf-8", errors="replace")
        if base is not None and digest(text) != base:
            raise FlagopsError(f"{flag_rel(key)} changed on disk since this page was loaded; nothing was written",
                               hint="reload the page to see the current file, then make the change again")
        return text

    def do_preview(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        text = self._current_text(key, body.get("base"))
        return preview(self.workspace.snapshot(), text, key, body.get("flag") or {})

    def do_save(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        self._current_text(key, body.get("base"))
        current = self.workspace.snapshot().flags.get(key)
        if current is None:
            raise FlagopsError(f"{flag_rel(key)} does not parse as a flag; fix it first (flagops validate)")
        change = change_from_form(current, body.get("flag") or {})
        if change.is_empty():
            return {"written": False, "notes": ["nothing changed"], "base": body.get("base"), "impact": {}}
        acknowledged = bool(body.get("acknowledgeRisks"))
        base = body.get("base")

        def save() -> EditResult:
            self._current_text(key, base)  # again, under the lock
            return edit_flag(self.root, key, change, confirm=lambda _: acknowledged)

        return self._write(save)

    def _write(self, run: Callable[[], EditResult]) -> dict[str, Any]:
        """Run one edit under the write lock; the next page sees its result."""
        with self.write_lock:
            edit = run()
            self.workspace.forget()
            return {"written": edit.written, "notes": edit.notes, "base": digest(edit.after),
                    "impact": _impact(edit.radius)}

    def do_kill(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        reason = str(body.get("reason") or "").strip()
        if not reason:
            raise FlagopsError("a kill needs a reason: say what went wrong, it goes into the flag file")
        # The kill switch is the emergency path: never held back by the risk checks.
        return self._write(lambda: kill_flag(self.root, key, reason=reason, confirm=lambda _: True))

    def do_restore(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        acknowledged = bool(body.get("acknowledgeRisks"))
        return self._write(lambda: restore_flag(self.root, key, confirm=lambda _: acknowledged))

    def do_delete(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        confirmed = bool(body.get("confirm"))
        return self._write(lambda: delete_flag(self.root, key, confirm=lambda _: confirmed))

    def do_new(self, body: dict[str, Any]) -> dict[str, Any]:
        key = str(body.get("key") or "").strip()
        description = str(body.get("description") or "").strip()
        if not description:
            raise FlagopsError("a new flag needs a description: say what it turns on")
        with self.write_lock:
            edit = new_flag(self.root, key, description, owner=str(body.get("owner") or "").strip() or None,
                            expires=str(body.get("expires") or "").strip() or None)
            self.workspace.forget()
            return {"written": edit.written, "key": key, "url": f"/flags/{key}"}

    def do_propose(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.write_lock:
            proposal = propose(self.root, title=body.get("title"))
            self.workspace.forget()
            return proposal.to_dict()


def _json_endpoint(work: Callable[[Request, dict[str, Any]], Any]) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that reads a JSON object, runs ``work`` in a thread, and maps refusals."""

    async def endpoint(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the request body is not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the request body must be a JSON object"}, status_code=400)
        try:
            return JSONResponse(await run_in_threadpool(work, request, body))
        except FlagopsError as exc:
            return _refused(exc)

    return endpoint


def create_app(root: Path, *, token: Optional[str] = None, remote: bool = False) -> Starlette:
    """The console over the clone at ``root``; ``token`` defaults to a fresh per-session one."""
    console = Console(Path(root), token or new_token())
    key = "{key:str}"
    routes = [
        Route("/", console.index),
        Route(f"/flags/{key}", console.flag),
        Route("/static/{name:str}", console.asset),
        Route("/api/search", console.search),
        Route("/api/tenants", console.tenants),
        Route(f"/api/flags/{key}/preview",
              _json_endpoint(lambda r, b: console.do_preview(r.path_params["key"], b)), methods=["POST"]),
        Route(f"/api/flags/{key}/save",
              _json_endpoint(lambda r, b: console.do_save(r.path_params["key"], b)), methods=["POST"]),
        Route(f"/api/flags/{key}/kill",
              _json_endpoint(lambda r, b: console.do_kill(r.path_params["key"], b)), methods=["POST"]),
        Route(f"/api/flags/{key}/restore",
              _json_endpoint(lambda r, b: console.do_restore(r.path_params["key"], b)), methods=["POST"]),
        Route(f"/api/flags/{key}/delete",
              _json_endpoint(lambda r, b: console.do_delete(r.path_params["key"], b)), methods=["POST"]),
        Route("/api/flags", _json_endpoint(lambda r, b: console.do_new(b)), methods=["POST"]),
        Route("/api/propose", _json_endpoint(lambda r, b: console.do_propose(b)), methods=["POST"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(GuardMiddleware, guard=Guard(console.token, remote))])
    app.state.console = console
    return app


def serve(root: Path, *, host: str = "127.0.0.1", port: int = 8450, open_browser: bool = True,
          allow_remote: bool = False, token: Optional[str] = None,
          announce: Callable[[str], None] = print) -> None:
    """Run the console until interrupted (Ctrl-C)."""
    import uvicorn

    check_bind_host(host, allow_remote=allow_remote, token=token)
    remote = not is_loopback(host)
    app = create_app(root, token=token if remote else None, remote=remote)
    shown = f"[{host}]" if ":" in host else host
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           server_header=False, date_header=False))

    def ready() -> None:
        bound = port
        for listening in getattr(server, "servers", []):  # --port 0: the port the system chose
            for sock in listening.sockets:
                bound = sock.getsockname()[1]
        url = f"http://{shown}:{bound}/" + (f"?token={token}" if remote else "")
        announce(f"flagops console on {url} (Ctrl-C stops it)")
        if open_browser:
            webbrowser.open(url)

    threading.Thread(target=_when_started, args=(server, ready), daemon=True).start()
    server.run()


def _when_started(server: Any, then: Callable[[], None], timeout: float = 10.0) -> None:
    deadline = _dt.datetime.now() + _dt.timedelta(seconds=timeout)
    while not server.started and _dt.datetime.now() < deadline and not server.should_exit:
        threading.Event().wait(0.02)
    if server.started:
        then()
