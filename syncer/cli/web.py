"""``syncer serve``: the web archive and its JSON API (see README "Web archive").

Why a module of its own: ``syncer.cli.app`` registers it lazily, so other
commands never import Starlette or uvicorn.
"""

from __future__ import annotations

from pathlib import Path

import click

from syncer.cli.context import State, pass_state

__all__ = ["serve_command"]


def _listen(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.UsageError(
            f'--listen must be "host:port", e.g. 127.0.0.1:8080 (got {value!r}).'
        )
    return host.strip("[]"), int(port)


@click.command("serve")
@click.option("--listen", metavar="HOST:PORT", help="Where to listen (default: [web] listen).")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Serve HTTPS with this PEM certificate (with --key).")  # fmt: skip
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The certificate's PEM private key.")  # fmt: skip
@pass_state
def serve_command(state: State, listen: str | None, cert: Path | None, key: Path | None) -> None:
    """Serve the web archive: search, read, export, holds, audit, for signed-in users.

    Users come from `syncer user add`. Put a TLS reverse proxy in front (deploy/)
    or give --cert/--key. Stops on SIGINT/SIGTERM.

    \b
    Example:
      syncer user add alice --role admin
      syncer serve --listen 127.0.0.1:8080
    """
    if (cert is None) != (key is None):
        raise click.UsageError("--cert and --key go together.")
    from syncer.web.server import serve

    address = _listen(listen)
    config = state.config
    with state.open_store() as store:
        serve(config, store, listen=address, cert=cert, key=key)
