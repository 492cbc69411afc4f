"""The Starlette application of the web archive: :func:`create_app`.

Why this module exists: it wires the pieces every route shares: who is asking
(:func:`current_viewer`: a bearer token, the signed session cookie, or the
trusted proxy's single-sign-on header), the role a route needs, the CSRF check
on every state-changing request (:func:`route` refuses one without the
session's token unless it carries a bearer token), the access trail
(:func:`record`), the templates (Jinja2, autoescaped) and the static files
served from the package. The routes themselves are in :mod:`syncer.web.pages`
and :mod:`syncer.web.api`.

Store calls are blocking: each route's body runs in Starlette's thread pool.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import Environment
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from syncer.errors import ArchiveError, SyncerError
from syncer.web.access import Viewer
from syncer.web.auth import token_digest
from syncer.web.security import RateLimit, csrf_token, csrf_valid

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.archive.views import MessageDetail
    from syncer.config.schema import Config

__all__ = ["Handler", "NotFound", "WebContext", "highlight", "record", "route", "web"]

_ROLES = {"reader": 0, "auditor": 1, "admin": 2}
#: A route's body: (request, viewer or None, the submitted fields) -> response; runs in a thread.
Handler = Callable[[Request, Viewer | None, dict[str, str]], Response]


class NotFound(Exception):
    """Answered as 404: no such thing, or one the viewer may not see (the same answer)."""


@dataclass
class WebContext:
    """What the routes share: the store, the configuration, templates and limits."""

    store: ArchiveStore
    config: Config
    env: Environment
    sign_in_limit: RateLimit = field(default_factory=RateLimit)

    def render(self, request: Request, name: str, viewer: Viewer | None, **values: Any) -> Response:
        values.setdefault("status_code", 200)
        status = values.pop("status_code")
        html = self.env.get_template(name).render(
            request=request, viewer=viewer, csrf=csrf_token(request.session), **values
        )
        return HTMLResponse(html, status_code=status)

    def message(self, viewer: Viewer, ref: str) -> MessageDetail:
        """The message ``ref`` (an id or a SHA-256) names, if the viewer may read it.

        :raises NotFound: when there is none, or it is in no account the viewer may see.
        """
        try:
            detail = self.store.message_detail(self.store.find_message(ref))
        except ArchiveError:
            raise NotFound from None
        if not viewer.may_read(detail):
            raise NotFound
        return detail


def web(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


def client_address(request: Request) -> str | None:
    """The client's address: the peer, or what a trusted proxy says it forwarded for."""
    peer = request.client.host if request.client else None
    if peer is not None and peer in web(request).config.web.trusted_proxies:
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded:
            return forwarded.split(",")[-1].strip() or peer
    return peer


def current_viewer(request: Request) -> Viewer | None:
    """Who is asking: a bearer token, the session, or the trusted proxy's SSO header."""
    context = web(request)
    authorization = request.headers.get("authorization", "")
    if authorization[:7].lower() == "bearer ":
        user = context.store.user_by_token(token_digest(authorization[7:].strip()))
        return Viewer(user, "token") if user is not None else None
    name = request.session.get("user")
    if isinstance(name, str):
        user = context.store.user(name)
        if user is not None:
            return Viewer(user, "session")
        request.session.pop("user", None)
    header = context.config.web.sso_header
    peer = request.client.host if request.client else None
    if header and peer in context.config.web.trusted_proxies:
        sso_name = request.headers.get(header, "").strip()
        user = context.store.user(sso_name) if sso_name else None
        if user is not None:
            return Viewer(user, "sso")
    return None


def record(
    request: Request, viewer: Viewer, kind: str, subject: str | None, **details: Any
) -> None:
    """Append one event of the access trail: who did what, from where, and how signed in."""
    web(request).store.audit(
        kind,
        actor=viewer.name,
        subject=subject,
        details={**details, "via": viewer.via, "client": client_address(request)},
    )


async def _fields(request: Request) -> dict[str, str]:
    if request.method in ("GET", "HEAD"):
        return {}
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            return {}
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _refuse(api: bool, status: int, message: str) -> Response:
    if api:
        return JSONResponse({"error": message}, status_code=status)
    return HTMLResponse(f"<!doctype html><title>{status}</title><p>{message}</p>", status)


def route(
    routes: list[Route],
    path: str,
    *,
    methods: tuple[str, ...] = ("GET",),
    role: str | None = "reader",
    api: bool = False,
) -> Callable[[Handler], Handler]:
    """Register ``handler`` at ``path``: sign-in and role checked, CSRF checked on every
    state-changing request (unless it carries a bearer token), errors answered."""

    def register(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            data = await _fields(request)
            viewer = await run_in_threadpool(current_viewer, request)
            if request.method not in ("GET", "HEAD") and (viewer is None or viewer.via != "token"):
                given = data.get("csrf") or request.headers.get("x-csrf-token")
                if not csrf_valid(request.session, given):
                    return _refuse(api, 403, "Missing or wrong CSRF token; reload the page.")
            if role is not None:
                if viewer is None:
                    if api:
                        return _refuse(True, 401, "Sign in, or send Authorization: Bearer TOKEN.")
                    return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}", 303)
                if _ROLES[viewer.role] < _ROLES[role]:
                    return _refuse(api, 403, f"This needs the {role} role.")
            try:
                return await run_in_threadpool(handler, request, viewer, data)
            except NotFound:
                return _refuse(api, 404, "No such message.")
            except SyncerError as exc:
                return _refuse(api, 400, exc.message)

        routes.append(Route(path, endpoint, methods=list(methods)))
        return handler

    return register


def highlight(snippet: str) -> Markup:
    """A search snippet with its ``[[matches]]`` marked, everything else escaped."""
    escaped = str(escape(snippet))
    return Markup(escaped.replace("[[", "<mark>").replace("]]", "</mark>"))
