"""The JSON API under ``/api/`` (docs/api.md): search, messages, raw bytes, attachments,
exports, legal holds and the audit trail.

Why this module exists: scripts and the pages' own JavaScript use the same data
the pages show, with a bearer token (``syncer user token NAME``) or the session
cookie (then state-changing calls need the ``X-CSRF-Token`` header). The same
rules hold as for the pages: a reader sees only its accounts (another account's
message is a 404), and every read of mail is recorded in the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from syncer.archive.search.store import SORTS
from syncer.errors import UsageError
from syncer.query import parse
from syncer.web.access import Viewer
from syncer.web.exports import FORMATS, stream_export
from syncer.web.mailview import content_disposition
from syncer.web.pages import attachment_response, raw_response
from syncer.web.routing import Handler, record, route, web

__all__ = ["register"]

_MAX_LIMIT = 500


def _int(value: str | None, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise UsageError(f"{name} must be a whole number, not {value!r}.")
    return int(value)


def _hold(hold: Any) -> dict[str, Any]:
    return {
        "name": hold.name,
        "query": hold.query,
        "reason": hold.reason,
        "created_at": hold.created_at.isoformat(),
        "released_at": hold.released_at.isoformat() if hold.released_at else None,
    }


#: The API's routes, in the order they are matched (:func:`register` adds them).
_ROUTES: list[Route] = []


def api(
    path: str, methods: tuple[str, ...] = ("GET",), role: str = "reader"
) -> Callable[[Handler], Handler]:
    """:func:`~syncer.web.routing.route` for this module's JSON routes."""
    return route(_ROUTES, path, methods=methods, role=role, api=True)


def register(routes: list[Route]) -> None:
    """Add the API routes to ``routes``."""
    routes.extend(_ROUTES)


@api("/api/search")
def search(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    store = web(request).store
    params = request.query_params
    query = params.get("q", "")
    limit = min(_int(params.get("limit"), 50, "limit"), _MAX_LIMIT)
    offset = _int(params.get("offset"), 0, "offset")
    sort = params.get("sort") or "-date"
    if sort not in SORTS:
        raise UsageError(f"Unknown sort {sort!r}; use one of {', '.join(SORTS)}.")
    total = store.count_messages(query, accounts=viewer.accounts)
    hits = store.search(query, limit=limit, offset=offset, sort=sort, accounts=viewer.accounts)
    record(request, viewer, "web.searched", query, total=total, offset=offset)
    return JSONResponse(
        {
            "total": total,
            "limit": limit,
            "offset": offset,
            "hits": [
                {
                    "id": h.id,
                    "sha256": h.sha256,
                    "date": h.date.isoformat() if h.date else None,
                    "from": h.sender,
                    "subject": h.subject,
                    "size": h.size,
                    "folders": list(h.folders),
                    "snippet": h.snippet,
                }
                for h in hits
            ],
        }
    )


@api("/api/messages/{ref}")
def message(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    detail = web(request).message(viewer, request.path_params["ref"])
    record(request, viewer, "web.message_viewed", detail.sha256, id=detail.id)
    return JSONResponse(detail.to_dict())


@api("/api/messages/{ref}/raw")
def raw(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    return raw_response(request, viewer, request.path_params["ref"])


@api("/api/messages/{ref}/attachments/{n:int}")
def attachment(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    params = request.path_params
    return attachment_response(request, viewer, params["ref"], params["n"])


@api("/api/export")
def export(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    store = web(request).store
    query = request.query_params.get("q", "")
    fmt = request.query_params.get("format", "mbox")
    if fmt not in FORMATS:
        raise UsageError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    count = store.count_messages(query, accounts=viewer.accounts)
    record(request, viewer, "web.exported", query, format=fmt, messages=count)
    return StreamingResponse(
        stream_export(store, query, fmt, accounts=viewer.accounts),
        media_type=FORMATS[fmt],
        headers={
            "Content-Disposition": content_disposition(f"export.{fmt}"),
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@api("/api/holds", role="auditor")
def holds(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    listed = web(request).store.holds(released=request.query_params.get("all") == "1")
    return JSONResponse({"holds": [_hold(h) for h in listed]})


@api("/api/holds", methods=("POST",), role="admin")
def hold_add(request: Request, viewer: Viewer | None, data: dict[str, str]) -> Response:
    assert viewer is not None
    name = data.get("name", "").strip()
    query = data.get("query", "")
    if not name:
        raise UsageError("A hold needs a name.")
    parse(query)
    hold = web(request).store.add_hold(name, query, data.get("reason") or None, actor=viewer.name)
    return JSONResponse(_hold(hold), status_code=201)


@api("/api/holds/{name}", methods=("DELETE",), role="admin")
def hold_release(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    assert viewer is not None
    hold = web(request).store.release_hold(request.path_params["name"], actor=viewer.name)
    return JSONResponse(_hold(hold))


@api("/api/audit", role="auditor")
def audit(request: Request, viewer: Viewer | None, _d: dict[str, str]) -> Response:
    store = web(request).store
    newest = request.query_params.get("newest")
    limit = _int(newest, 0, "newest") if newest else None
    report = store.audit_verify()
    return JSONResponse(
        {
            "verify": {
                "ok": report.ok,
                "events": report.events,
                "broken_at": report.broken_at,
                "problem": report.problem,
            },
            "events": [event.to_dict() for event in store.audit_events(newest=limit)],
        }
    )
