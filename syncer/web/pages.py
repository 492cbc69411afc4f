"""The pages of the web archive: sign-in, search, folders, message, holds, retention, audit,
status, users.

Why this module exists: each route is a thin function over the store, the query
language and :mod:`syncer.web.mailview`; access is decided by the
:class:`~syncer.web.access.Viewer` and every read of mail is recorded in the
audit trail (:func:`~syncer.web.routing.record`). The search facets are turned into
query-language terms (``account:``, ``folder:``, ``after:``, ``before:``,
``has:attachment``, ``from:``), so the box and the facets mean one thing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from syncer.archive.search.store import SORTS
from syncer.errors import UsageError
from syncer.mime.bodies import bodies
from syncer.query import And, Field, QuerySyntaxError, format_query, parse
from syncer.query import Query as QueryTree
from syncer.web.access import Viewer
from syncer.web.auth import sign_in
from syncer.web.mailview import (
    attachment_bytes,
    content_disposition,
    download_type,
    frame_document,
    zip_attachments,
)
from syncer.web.routing import Handler, NotFound, client_address, record, route, web

__all__ = ["PAGE_SIZE", "facet_query", "register"]

PAGE_SIZE = 50
#: The search page counts matches up to this many and then says "more than".
COUNT_LIMIT = 1_000
_FACETS = ("account", "folder", "from")


def _day(value: str, *, shift: int = 0) -> str | None:
    try:
        return (date.fromisoformat(value) + timedelta(days=shift)).isoformat()
    except ValueError:
        return None


def facet_query(params: dict[str, str]) -> str:
    """The query box and the facets as one query (facets become field terms)."""
    terms: list[QueryTree] = []
    text = params.get("q", "").strip()
    if text:
        terms.append(parse(text))
    for name in _FACETS:
        value = params.get(name, "").strip()
        if value:
            terms.append(Field(name, value))
    # The date inputs are inclusive days; after:/before: are strict.
    since = _day(params.get("since", ""), shift=-1)
    until = _day(params.get("until", ""), shift=1)
    if since:
        terms.append(Field("after", since))
    if until:
        terms.append(Field("before", until))
    if params.get("attachments") == "1":
        terms.append(Field("has", "attachment"))
    if not terms:
        return ""
    return format_query(terms[0] if len(terms) == 1 else And(tuple(terms)))


#: The pages' routes, in the order they are matched (:func:`register` adds them).
_ROUTES: list[Route] = []


def page(
    path: str, *, methods: tuple[str, ...] = ("GET",), role: str | None = "reader"
) -> Callable[[Handler], Handler]:
    """:func:`~syncer.web.routing.route` for this module's pages."""
    return route(_ROUTES, path, methods=methods, role=role)


def register(routes: list[Route]) -> None:
    """Add the page routes to ``routes``."""
    routes.extend(_ROUTES)


@page("/", role=None)
def home(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    return RedirectResponse("/search" if viewer else "/login", 303)


@page("/login", methods=("GET", "POST"), role=None)
def login(request: Request, viewer: Viewer | None, data: dict[str, str]) -> Response:
    context = web(request)
    target = request.query_params.get("next", "/search")
    if not target.startswith("/") or target.startswith("//"):
        target = "/search"
    if request.method == "GET":
        return context.render(request, "login.html", viewer, next=target, error=None)
    client = client_address(request) or "unknown"
    if not context.sign_in_limit.allow(client):
        return context.render(
            request, "login.html", None, next=target, status_code=429,
            error="Too many sign-in attempts from your address; wait a minute.",
        )  # fmt: skip
    result = sign_in(context.store, data.get("name", ""), data.get("password", ""),
                     client=client)  # fmt: skip
    if result.user is None:
        return context.render(
            request, "login.html", None, next=target, error=result.message, status_code=401
        )
    request.session.clear()
    request.session["user"] = result.user.name
    return RedirectResponse(target, 303)


@page("/logout", methods=("POST",))
def logout(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    record(request, viewer, "web.sign_out", viewer.name)
    request.session.clear()
    return RedirectResponse("/login", 303)


@page("/search")
def search(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    context = web(request)
    params = dict(request.query_params)
    sort = params.get("sort", "-date") if params.get("sort") in SORTS else "-date"
    page_no = max(1, int(params["page"])) if params.get("page", "").isdigit() else 1
    error = None
    hits: list[Any] = []
    total = 0
    scope = viewer.accounts
    try:
        query = facet_query(params)
        offset = (page_no - 1) * PAGE_SIZE
        total = context.store.count_messages(query, at_most=COUNT_LIMIT, accounts=scope)
        hits = context.store.search(
            query, limit=PAGE_SIZE, offset=offset, sort=sort, accounts=scope
        )
    except QuerySyntaxError as exc:
        error, query = exc.message, params.get("q", "")
    if error is None:
        record(request, viewer, "web.searched", query, total=total, page=page_no)
    folders = [f for f in context.store.folder_names() if viewer.may_see_account(f[0])]
    keep = {k: v for k, v in params.items() if k != "page" and v}
    return context.render(
        request, "search.html", viewer, params=params, query=query, hits=hits, total=total,
        error=error,
        page=page_no, pages=max(1, -(-min(total, COUNT_LIMIT) // PAGE_SIZE)), sort=sort,
        sorts=SORTS, count_limit=COUNT_LIMIT,
        accounts=sorted({a for a, _ in folders}), folders=sorted({f for _, f in folders}),
        link=lambda n: "/search?" + urlencode({**keep, "page": n}),
    )  # fmt: skip


@page("/folders")
def folder_list(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    context = web(request)
    status = context.store.status()
    accounts = {
        name: info for name, info in status.accounts.items() if viewer.may_see_account(name)
    }
    return context.render(request, "folders.html", viewer, accounts=accounts)


@page("/messages/{ref}")
def message(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    context = web(request)
    detail = context.message(viewer, request.path_params["ref"])
    found = bodies(context.store.get_raw(detail.sha256))
    thread: list[Any] = []
    if detail.thread_key:
        same_thread = format_query(Field("thread", detail.thread_key))
        thread = context.store.search(same_thread, limit=100, sort="date", accounts=viewer.accounts)
    record(request, viewer, "web.message_viewed", detail.sha256, id=detail.id)
    return context.render(
        request, "message.html", viewer, m=detail, text=found.text,
        has_html=found.html is not None, thread=thread,
        remote=request.query_params.get("remote") == "1",
    )  # fmt: skip


@page("/messages/{ref}/frame")
def frame(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    context = web(request)
    detail = context.message(viewer, request.path_params["ref"])
    raw = context.store.get_raw(detail.sha256)
    html = bodies(raw).html
    if html is None:
        raise NotFound
    remote = request.query_params.get("remote") == "1"
    shown = frame_document(html, detail, raw, remote=remote)
    return Response(
        shown.html,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": shown.csp + "; frame-ancestors 'self'",
            "X-Frame-Options": "SAMEORIGIN",
            "X-Remote-Images-Blocked": str(shown.blocked),
        },
    )


@page("/messages/{ref}/raw")
def raw(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    return raw_response(request, viewer, request.path_params["ref"])


@page("/messages/{ref}/attachments/{n:int}")
def attachment(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    return attachment_response(
        request, viewer, request.path_params["ref"], request.path_params["n"]
    )


@page("/messages/{ref}/attachments.zip")
def all_attachments(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    context = web(request)
    detail = context.message(viewer, request.path_params["ref"])
    if not detail.attachments:
        raise NotFound
    content = zip_attachments(context.store.get_raw(detail.sha256), detail)
    record(request, viewer, "web.attachments_downloaded", detail.sha256, id=detail.id,
           attachments=len(detail.attachments))  # fmt: skip
    return Response(
        content,
        media_type="application/zip",
        headers=_download_headers(f"message-{detail.id}-attachments.zip"),
    )


def _download_headers(name: str | None, fallback: str = "download") -> dict[str, str]:
    return {
        "Content-Disposition": content_disposition(name, fallback),
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }


def raw_response(request: Request, viewer: Viewer, ref: str) -> Response:
    """The archived bytes, unchanged, as ``message-ID.eml`` (audited)."""
    context = web(request)
    detail = context.message(viewer, ref)
    content = context.store.get_raw(detail.sha256)
    record(request, viewer, "web.raw_downloaded", detail.sha256, id=detail.id)
    return Response(
        content,
        media_type="message/rfc822",
        headers=_download_headers(f"message-{detail.id}.eml"),
    )


def attachment_response(request: Request, viewer: Viewer, ref: str, number: int) -> Response:
    """Attachment ``number`` (from 1) of a message, decoded (audited)."""
    context = web(request)
    detail = context.message(viewer, ref)
    if not 1 <= number <= len(detail.attachments):
        raise NotFound
    item = detail.attachments[number - 1]
    content = attachment_bytes(context.store.get_raw(detail.sha256), item)
    if content is None:
        raise NotFound
    record(request, viewer, "web.attachment_downloaded", detail.sha256, id=detail.id,
           attachment=number, attachment_sha256=item.sha256)  # fmt: skip
    return Response(
        content,
        media_type=download_type(item.content_type),
        headers=_download_headers(item.safe_filename, f"attachment-{number}"),
    )


# Holds, retention plan, audit trail, status and users.


@page("/holds", role="auditor")
def holds(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    context = web(request)
    listed = context.store.holds(released=True)
    return context.render(request, "holds.html", viewer, holds=listed, error=None)


@page("/holds", methods=("POST",), role="admin")
def hold_add(request: Request, viewer: Viewer | None, data: dict[str, str]) -> Response:
    assert viewer is not None
    context = web(request)
    name, query = data.get("name", "").strip(), data.get("query", "").strip()
    try:
        if not name:
            raise UsageError("A hold needs a name.")
        parse(query)
        context.store.add_hold(name, query, data.get("reason") or None, actor=viewer.name)
    except (UsageError, QuerySyntaxError) as exc:
        listed = context.store.holds(released=True)
        return context.render(request, "holds.html", viewer, holds=listed,
                              error=exc.message, status_code=400)  # fmt: skip
    return RedirectResponse("/holds", 303)


@page("/holds/{name}/release", methods=("POST",), role="admin")
def hold_release(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    web(request).store.release_hold(request.path_params["name"], actor=viewer.name)
    return RedirectResponse("/holds", 303)


@page("/retention", role="auditor")
def retention(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    from syncer.retention.policy import build_plan

    context = web(request)
    plan = build_plan(context.store, context.config.retention).to_dict()
    return context.render(request, "retention.html", viewer, plan=plan,
                          policies=context.config.retention)  # fmt: skip


@page("/audit", role="auditor")
def audit(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    context = web(request)
    report = context.store.audit_verify()
    events = context.store.audit_events(newest=500)
    return context.render(request, "audit.html", viewer, report=report, events=events)


@page("/status")
def status(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    context = web(request)
    data = context.store.status()
    accounts = {n: a for n, a in data.accounts.items() if viewer.may_see_account(n)}
    runs = [r for r in context.store.runs(limit=50) if viewer.may_see_account(r.account)]
    failures = [r for r in runs if r.status == "failed"][:10]
    return context.render(
        request, "status.html", viewer, accounts=accounts, totals=data.totals,
        failures=failures, outbox=context.store.outbox_depth(),
    )  # fmt: skip


@page("/users", role="admin")
def users(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    context = web(request)
    return context.render(request, "users.html", viewer, users=context.store.users())


@page("/users/{name}/remove", methods=("POST",), role="admin")
def user_remove(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    name = request.path_params["name"]
    if name == viewer.name:
        raise UsageError("You cannot remove yourself.")
    web(request).store.remove_user(name, actor=viewer.name)
    return RedirectResponse("/users", 303)
