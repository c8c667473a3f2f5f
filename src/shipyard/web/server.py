"""``shipyard serve``: the dashboard on uvicorn, bound to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import secrets
import socket
import sys
from pathlib import Path

from shipyard.exceptions import EnvironmentProblem, InputError
from shipyard.store.db import DB_FILE
from shipyard.web.security import LOOPBACK, Guard, is_loopback


def serve(project: Path, host: str, port: int, batch: Path | None = None) -> None:
    """The dashboard of ``project``'s runs, or with ``batch`` of a ``shipyard batch`` folder."""
    import uvicorn

    from shipyard.web.app import create_app

    if batch is not None:
        from shipyard.store.batchdb import BATCH_DB
        from shipyard.web.batch import create_batch_app

        if not (batch / BATCH_DB).is_file():
            raise InputError(f"{batch}: no batch database here ({BATCH_DB}; run `shipyard batch`)")
        site, project = create_batch_app(batch), batch
    else:
        if not (project / ".shipyard" / DB_FILE).is_file():
            raise InputError(f"no runs in {project} (no .shipyard/{DB_FILE}): nothing to show yet")
        site = create_app(project)
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    token = None if is_loopback(host) else secrets.token_urlsafe(24)
    hosts = frozenset(LOOPBACK | {host}) if token is None else frozenset()
    app = Guard(site, token=token, hosts=hosts)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/" + (f"?token={token}" if token else "")
    print(f"shipyard dashboard for {project}: {url}", flush=True)
    if token:
        print("  bound beyond this machine: every request must carry the token", flush=True)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=2, lifespan="off"
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    print("shipyard dashboard stopped", file=sys.stderr)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise EnvironmentProblem(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(128)
    return sock
