"""``tourviews serve --quickstart``: a demo tour and an admin token on an empty directory,
and what to do with them, printed once the server listens."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import uuid
from pathlib import Path

from tourviews.storage.registry import TOKEN_PREFIX, Registry, new_token

DEMO_TOUR = "demo"
QUICKSTART_FILE = "quickstart-token"  # the quick start's admin token, until it is used
DEMO_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def quickstart_token(registry: Registry, data_dir: Path) -> str | None:
    """The quick start's admin token while it has not been used; made on an empty directory.

    It is kept in the data directory (beside the instance secret, which is worth more)
    from the moment it is made, so a first start that fails loses nothing, and it is
    shown at every start until someone uses it.
    """
    kept = data_dir / QUICKSTART_FILE
    try:
        token: str | None = kept.read_text().strip()
    except (FileNotFoundError, UnicodeDecodeError, OSError):
        token = None
    if not registry.tours and not registry.has_tokens():  # an empty data directory
        # On disk (fsynced) before it can work: a crash in between loses nothing.
        token = new_token() if token is None or not token.startswith(TOKEN_PREFIX) else token
        descriptor = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(token + "\n")
            file.flush()
            os.fsync(file.fileno())
        registry.put_tour(DEMO_TOUR, DEMO_TOUR)
        return registry.create_token(DEMO_TOUR, admin=True, token=token)
    if token is not None and registry.token_used(token) is False:
        return token
    kept.unlink(missing_ok=True)  # used, or revoked: the operator has it, or needs it no more
    return None


def instructions(url: str, data_dir: Path, token: str) -> str:
    """What the quick start prints once the server listens at ``url``."""
    program = shutil.which("tourviews") or sys.argv[0]
    with contextlib.suppress(ValueError):  # outside the working directory: keep it absolute
        program = str(Path(program).resolve().relative_to(Path.cwd()))
    command = shlex.quote(program)
    if Path(program).name == "__main__.py":  # python -m tourviews, with none on the PATH
        command = f"{shlex.quote(sys.executable)} -m tourviews"
    data = "" if data_dir == Path("data") else f" --data {shlex.quote(str(data_dir))}"
    beacon = f'{{"tour":"{DEMO_TOUR}","visitor":"{uuid.uuid4()}"}}'
    return f"""
Quick start: tour "{DEMO_TOUR}" (organization "{DEMO_TOUR}") and an admin token. The
token is shown at every start until it is first used:

    {token}

The dashboard:

    {url}/dashboard#token={token}

Send a view (answers 204):

    curl -i -X POST {url}/v1/beacon -H 'Content-Type: text/plain' \\
      -A '{DEMO_AGENT}' \\
      -d '{beacon}'

Read it (while this server runs, in another terminal):

    {command} stats {DEMO_TOUR}{data}
"""
