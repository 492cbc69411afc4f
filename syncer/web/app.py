"""The web archive as an ASGI application: :func:`create_app`.

Why a module of its own: the pages (:mod:`syncer.web.pages`) and the JSON API
(:mod:`syncer.web.api`) register their routes through :mod:`syncer.web.routing`;
this module puts them together with the middleware, so neither imports the other
through the application.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from syncer.web import api, pages
from syncer.web.routing import WebContext, highlight
from syncer.web.security import SecurityHeaders

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config

__all__ = ["create_app"]

_HERE = Path(__file__).parent


def create_app(config: Config, store: ArchiveStore, *, secret: str | None = None) -> Starlette:
    """The web archive over ``store``.

    :param secret: the session signing key (``[web]`` session secret); a random one
        when None, so sessions end with the process.
    """
    env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=True)
    env.filters["highlight"] = highlight
    routes: list[Route] = []
    pages.register(routes)
    api.register(routes)
    secure = config.web.cert is not None or (config.web.base_url or "").startswith("https:")
    app = Starlette(
        routes=[*routes, Mount("/static", StaticFiles(directory=_HERE / "static"), name="static")],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret or secrets.token_urlsafe(32),
                session_cookie="syncer_session",
                max_age=12 * 3600,
                same_site="strict",
                https_only=secure,
            ),
        ],
    )
    app.state.web = WebContext(store, config, env)
    return app
