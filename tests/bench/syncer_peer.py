"""The syncer side of the benchmarks: the same server, the same measuring, one CLI call.

docs/performance.md compares whole processes, the way users feel them, so syncer is
benchmarked through its command line (``syncer --config CONF sync``) exactly like
mbsync, with the same :func:`tests.bench.mbsync.timed` (wall time, peak RSS of a
fresh child). The configuration points a SQLite archive at a state directory the
caller owns; a fresh directory is a fresh full sync, reusing it is a re-sync.

``run_syncer`` is the seam the lead fills in if the CLI changes: it takes the
same :class:`~tests.bench.mbsync.ServerParams` as the mbsync peer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

from tests.bench.mbsync import Measurement, ServerParams, timed

#: The account name in the written configuration.
ACCOUNT = "bench"
#: The environment variable the configuration takes the password from.
PASSWORD_ENV = "BENCH_PASS"


@cache
def compile_bytecode() -> None:
    """Compile the syncer package this interpreter imports to bytecode (``__pycache__``).

    Why: an installed syncer has its bytecode (pip compiles it), but an editable
    checkout under ``PYTHONDONTWRITEBYTECODE=1`` (as on the benchmark machine) would
    compile every module from source at every start -- about a sixth of a no-change
    sync. Benchmarks measure what users run, so they compile it first.
    """
    import compileall

    import syncer

    compileall.compile_dir(Path(syncer.__file__).parent, quiet=1)


def compile_tree(binary: str) -> None:
    """:func:`compile_bytecode` for the syncer that another venv's ``syncer`` script runs
    (``ab_trees`` compares two trees), by that venv's own interpreter."""
    python = Path(binary).with_name("python")
    if python.exists():
        code = (
            "import compileall, os, syncer; "
            "compileall.compile_dir(os.path.dirname(syncer.__file__), quiet=1)"
        )
        subprocess.run([str(python), "-c", code], check=True, cwd="/")


def syncer_binary() -> str:
    """The ``syncer`` script of the running interpreter's venv (else from ``$PATH``),
    with the package compiled to bytecode (:func:`compile_bytecode`)."""
    compile_bytecode()
    candidate = Path(sys.executable).with_name("syncer")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("syncer")
    if found is None:
        raise FileNotFoundError("the syncer command is not installed (pip install -e .)")
    return found


def _toml_str(value: str | Path) -> str:
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def write_syncer_config(path: Path, params: ServerParams, state_dir: Path) -> Path:
    """Write a syncer TOML config archiving every folder of *params* into *state_dir*."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by tests/bench/syncer_peer.py",
        "[archive]",
        f"url = {_toml_str('sqlite:///' + str(state_dir / 'archive.db'))}",
        "",
        "[logging]",
        'level = "warning"',
        "",
        "[[accounts]]",
        f"name = {_toml_str(ACCOUNT)}",
        'protocol = "imap"',
        f"host = {_toml_str(params.host)}",
        f"port = {params.port}",
        f"security = {_toml_str('tls' if params.tls else 'plain')}",
        f"username = {_toml_str(params.user)}",
        f"password_env = {_toml_str(PASSWORD_ENV)}",
    ]
    if params.tls:
        if params.ca_file is None:
            raise ValueError("TLS needs the test CA (ca_file)")
        lines.append(f"ca_file = {_toml_str(params.ca_file)}")
    else:
        lines.append("allow_insecure = true")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def run_syncer(
    params: ServerParams, state_dir: Path, *, timeout: float = 3600, normalize: bool = True
) -> tuple[Measurement, Measurement | None]:
    """Sync *params* into the archive in *state_dir*; return (sync, init) measurements.

    A state directory without an archive gets ``syncer init`` first (timed apart,
    ``None`` when it was not needed): creating the schema is setup, like mbsync
    creating its Maildir root, not part of the sync figure.
    """
    config = write_syncer_config(state_dir / "syncer.toml", params, state_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")} | {
        PASSWORD_ENV: params.password
    }
    binary = syncer_binary()
    init: Measurement | None = None
    if not (state_dir / "archive.db").exists():
        init = timed([binary, "--config", str(config), "init"], env=env, timeout=timeout)
        if not init.ok:
            return init, init
    flags = [] if normalize else ["--no-normalize"]
    sync = timed(
        [binary, "--config", str(config), "sync", *flags, "--json"], env=env, timeout=timeout
    )
    return sync, init


def run_syncer_command(
    params: ServerParams, state_dir: Path, *args: str, timeout: float = 3600
) -> Measurement:
    """``syncer --config CONF ARGS...`` on the archive in *state_dir* (e.g. verify, normalize)."""
    config = write_syncer_config(state_dir / "syncer.toml", params, state_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")} | {
        PASSWORD_ENV: params.password
    }
    return timed([syncer_binary(), "--config", str(config), *args], env=env, timeout=timeout)
