"""How commands reach a data directory: through its running server, or directly.

DuckDB lets one process open the file. While ``tourviews serve`` runs, it writes
``server.json`` (its address and PID) into the data directory, and commands send
their work to it over HTTP, signed with a key derived from the instance secret.
With no server running, commands open the DuckDB file themselves.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from tourviews.analytics.auth import local_credential
from tourviews.operations import Operations
from tourviews.storage.clock import SystemClock
from tourviews.storage.database import open_database
from tourviews.storage.errors import InvalidValue, StorageBusy, StorageError
from tourviews.storage.registry import KEEP, Registry, Tour, check_token_id
from tourviews.storage.secret import derive_key, load_secret

SERVER_FILE = "server.json"
BUSY_WAIT_SECONDS = 5.0
HEALTH_TIMEOUT = 5.0


class CommandError(Exception):
    """A command could not be carried out; the message is one line for the user."""


def write_server_file(data_dir: Path, url: str, instance: str) -> None:
    """Announce the server: its URL, PID, and the nonce its /healthz answers with."""
    path = data_dir / SERVER_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps({"url": url, "pid": os.getpid(), "instance": instance}))
    os.replace(temporary, path)


def remove_server_file(data_dir: Path) -> None:
    path = data_dir / SERVER_FILE
    try:
        if orjson.loads(path.read_bytes()).get("pid") == os.getpid():
            path.unlink()
    except (FileNotFoundError, orjson.JSONDecodeError):
        pass


def running_server(data_dir: Path) -> str | None:
    """The URL of the server running on ``data_dir``, if one is.

    A live PID is not enough: after a crash the PID may be another process's, and the
    URL another server's. The server answers /healthz with the nonce it wrote here.
    """
    try:
        info = orjson.loads((data_dir / SERVER_FILE).read_bytes())
        os.kill(int(info["pid"]), 0)
        url, instance = str(info["url"]), str(info["instance"])
    except (FileNotFoundError, orjson.JSONDecodeError, KeyError, ValueError, TypeError,
            OverflowError, ProcessLookupError, AttributeError):  # fmt: skip
        return None  # no file, a file that is not ours, or its process is gone
    except PermissionError:  # alive, another user's
        return None
    try:
        with http_client(url, HEALTH_TIMEOUT) as client:
            answer = client.get("/healthz").json()
    except (httpx.HTTPError, httpx.InvalidURL, ValueError):
        return None
    return url if isinstance(answer, dict) and answer.get("instance") == instance else None


def http_client(url: str, timeout: float) -> httpx.Client:
    """A client of the server at ``url``: ``http://HOST:PORT``, or ``unix:PATH`` for a
    primary behind front workers (serve --workers N), whose socket is in its data
    directory. Straight to the address: no proxy from the environment stands between."""
    if url.startswith("unix:"):
        transport = httpx.HTTPTransport(uds=url.removeprefix("unix:"))
        return httpx.Client(transport=transport, base_url="http://primary", timeout=timeout,
                            trust_env=False)  # fmt: skip
    return httpx.Client(base_url=url, timeout=timeout, trust_env=False)


class Backend(Protocol):
    def put_tour(
        self, tour: str, org: str, origins: list[str] | None = None,
        scenes: list[str] | None = None, move: bool = False, public_counter: bool | None = None,
        timezone: str | None = None, goals: list[str] | None = None,
    ) -> dict[str, Any]: ...  # fmt: skip
    def list_tours(self) -> list[dict[str, Any]]: ...
    def create_token(self, org: str, admin: bool, tour: str | None) -> str: ...
    def list_tokens(self) -> list[dict[str, Any]]: ...
    def revoke_token(self, identifier: str) -> None: ...
    def stats(
        self, tour: str, start: str | None, end: str | None, interval: str | None,
        tz: str | None = None, filters: Sequence[str] = (),
    ) -> dict[str, Any]: ...  # fmt: skip
    def funnel(
        self, tour: str, steps: list[str], start: str | None, end: str | None,
        tz: str | None = None,
    ) -> dict[str, Any]: ...  # fmt: skip
    def abuse(self, start: str | None, end: str | None) -> dict[str, Any]: ...
    def report(self, org: str, week: str | None, filters: Sequence[str] = ()) -> dict[str, Any]: ...
    def tour_report(
        self, tour: str, week: str | None, filters: Sequence[str] = ()
    ) -> dict[str, Any]: ...
    def report_to(self, tour: str) -> list[str]: ...
    def set_report_to(self, tour: str, recipients: list[str]) -> list[str]: ...
    def forget(self, visitor: str) -> int: ...
    def purge(self) -> int: ...
    def compact(self) -> tuple[int, int]: ...
    def close(self) -> None: ...


class Local:
    """Works on the DuckDB file directly (no server is running): the operations, answering
    as the commands expect (documents, and an unknown name as an error naming the flag)."""

    def __init__(self, data_dir: Path) -> None:
        clock = SystemClock()
        db = open_database(data_dir)
        self.operations = Operations(db, Registry(db, clock), clock)

    def put_tour(
        self, tour: str, org: str, origins: list[str] | None = None,
        scenes: list[str] | None = None, move: bool = False, public_counter: bool | None = None,
        timezone: str | None = None, goals: list[str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        kept = KEEP if scenes is None else scenes  # a command cannot ask for "any scene"
        entry = self.operations.put_tour(
            tour, org, origins, kept, move, public_counter, timezone, goals
        )
        return entry.document()

    def list_tours(self) -> list[dict[str, Any]]:
        return [tour.document() for tour in self.operations.list_tours()]

    def create_token(self, org: str, admin: bool, tour: str | None) -> str:
        return self.operations.create_token(org, admin, tour)

    def list_tokens(self) -> list[dict[str, Any]]:
        return self.operations.list_tokens()

    def revoke_token(self, identifier: str) -> None:
        if not self.operations.revoke_token(identifier):
            raise InvalidValue("id", f"no token has the id {identifier}")

    def stats(
        self, tour: str, start: str | None, end: str | None, interval: str | None,
        tz: str | None = None, filters: Sequence[str] = (),
    ) -> dict[str, Any]:  # fmt: skip
        return self.operations.stats(self._tour(tour), start, end, interval, tz, filters=filters)

    def funnel(
        self, tour: str, steps: list[str], start: str | None, end: str | None,
        tz: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        return self.operations.funnel(self._tour(tour), steps, start, end, tz)

    def abuse(self, start: str | None, end: str | None) -> dict[str, Any]:
        return self.operations.abuse(start, end)

    def report(self, org: str, week: str | None, filters: Sequence[str] = ()) -> dict[str, Any]:
        return self.operations.report(org, week, filters)

    def _tour(self, tour: str) -> Tour:
        found = self.operations.tours.get(tour)
        if found is None:
            raise InvalidValue("tour", f"unknown tour {tour!r}")
        return found

    def tour_report(
        self, tour: str, week: str | None, filters: Sequence[str] = ()
    ) -> dict[str, Any]:
        return self.operations.tour_report(self._tour(tour), week, filters)

    def report_to(self, tour: str) -> list[str]:
        return list(self.operations.report_to(self._tour(tour)))

    def set_report_to(self, tour: str, recipients: list[str]) -> list[str]:
        return list(self.operations.set_report_to(tour, recipients))

    def forget(self, visitor: str) -> int:
        return self.operations.forget(visitor)

    def purge(self) -> int:
        return self.operations.purge()

    def compact(self) -> tuple[int, int]:
        return self.operations.compact()

    def close(self) -> None:
        self.operations.db.close()


class Remote:
    """Sends the work to the running server, as the local operator."""

    def __init__(self, url: str, control_key: bytes) -> None:
        self.url = url
        self._key = control_key
        self._client = http_client(url, 30.0)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        credential = local_credential(self._key, time.time())
        try:
            response = self._client.request(
                method, path, headers={"Authorization": f"Bearer {credential}"}, **kwargs
            )
        except httpx.HTTPError as exc:
            raise CommandError(f"cannot reach the tourviews server at {self.url}: {exc}") from None
        if response.status_code >= 400:
            try:
                error = response.json()
            except ValueError:
                error = {"error": response.text[:200]}
            field = error.get("field")
            message = str(error.get("error", f"HTTP {response.status_code}"))
            raise InvalidValue(field, message) if field else CommandError(message)
        return response.json()

    def put_tour(
        self, tour: str, org: str, origins: list[str] | None = None,
        scenes: list[str] | None = None, move: bool = False, public_counter: bool | None = None,
        timezone: str | None = None, goals: list[str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        given = {"origins": origins, "scenes": scenes, "public_counter": public_counter,
                 "timezone": timezone, "goals": goals}  # fmt: skip
        body = {"org": org, "move": move} | {k: v for k, v in given.items() if v is not None}
        result: dict[str, Any] = self._call("PUT", f"/v1/admin/tours/{tour}", json=body)
        return result

    def list_tours(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/admin/tours")
        return result

    def create_token(self, org: str, admin: bool, tour: str | None) -> str:
        body = {"org": org, "admin": admin, "tour": tour}
        return str(self._call("POST", "/v1/admin/tokens", json=body)["token"])

    def list_tokens(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/admin/tokens")
        return result

    def revoke_token(self, identifier: str) -> None:
        check_token_id(identifier)  # before it becomes a path, maybe another route's
        self._call("DELETE", f"/v1/admin/tokens/{identifier}")

    def stats(
        self, tour: str, start: str | None, end: str | None, interval: str | None,
        tz: str | None = None, filters: Sequence[str] = (),
    ) -> dict[str, Any]:  # fmt: skip
        given = (("from", start), ("to", end), ("interval", interval), ("tz", tz))
        params: dict[str, Any] = {k: v for k, v in given if v} | _filters(filters)
        result: dict[str, Any] = self._call("GET", f"/v1/tours/{tour}/stats", params=params)
        return result

    def funnel(
        self, tour: str, steps: list[str], start: str | None, end: str | None,
        tz: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        given = (("from", start), ("to", end), ("tz", tz))
        params = [("step", step) for step in steps] + [(k, v) for k, v in given if v]
        result: dict[str, Any] = self._call("GET", f"/v1/tours/{tour}/funnel", params=params)
        return result

    def abuse(self, start: str | None, end: str | None) -> dict[str, Any]:
        params = {k: v for k, v in (("from", start), ("to", end)) if v}
        result: dict[str, Any] = self._call("GET", "/v1/admin/abuse", params=params)
        return result

    def report(self, org: str, week: str | None, filters: Sequence[str] = ()) -> dict[str, Any]:
        params: dict[str, Any] = {"org": org, "format": "json"} | ({"week": week} if week else {})
        params |= _filters(filters)
        result: dict[str, Any] = self._call("GET", "/v1/admin/report", params=params)
        return result

    def tour_report(
        self, tour: str, week: str | None, filters: Sequence[str] = ()
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"tour": tour, "format": "json"} | ({"week": week} if week else {})
        params |= _filters(filters)
        result: dict[str, Any] = self._call("GET", "/v1/admin/report", params=params)
        return result

    def report_to(self, tour: str) -> list[str]:
        return list(self._call("GET", f"/v1/admin/tours/{tour}/report")["report_to"])

    def set_report_to(self, tour: str, recipients: list[str]) -> list[str]:
        body = {"report_to": recipients}
        return list(self._call("PUT", f"/v1/admin/tours/{tour}/report", json=body)["report_to"])

    def forget(self, visitor: str) -> int:
        return int(self._call("DELETE", f"/v1/admin/visitors/{visitor}")["deleted"])

    def purge(self) -> int:
        return int(self._call("POST", "/v1/admin/purge")["deleted"])

    def compact(self) -> tuple[int, int]:
        result = self._call("POST", "/v1/admin/compact")
        return int(result["bytes_before"]), int(result["bytes_after"])

    def close(self) -> None:
        self._client.close()


def connect(data_dir: Path) -> Backend:
    """The running server of ``data_dir`` if there is one, else the file itself."""
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    while True:
        url = running_server(data_dir)
        if url is not None:
            return Remote(url, derive_key(load_secret(data_dir, create=False), "control"))
        try:
            return Local(data_dir)
        except StorageBusy as exc:
            # A server may be starting (it holds the file before it writes server.json).
            if time.monotonic() > deadline:
                raise StorageError(f"{exc}, which is not a tourviews server answering") from None
            time.sleep(0.2)


def _filters(filters: Sequence[str]) -> dict[str, Any]:
    """The query parameters of ``filters``: ``filter`` once each (none: no parameter)."""
    return {"filter": list(filters)} if filters else {}
