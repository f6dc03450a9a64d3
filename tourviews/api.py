"""The owner and operator HTTP API (FastAPI): one router per audience."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from tourviews.analytics import breakdowns
from tourviews.analytics.auth import Authenticator
from tourviews.analytics.export import breakdown_csv, exported
from tourviews.analytics.funnel import STEP
from tourviews.analytics.period import Period
from tourviews.analytics.report import UnknownOrganization
from tourviews.analytics.report_email import html
from tourviews.analytics.stats import BREAKDOWN_LIMIT, MAX_BREAKDOWN_LIMIT, series_csv
from tourviews.analytics.week import ISO_WEEK
from tourviews.operations import Operations
from tourviews.storage.errors import Conflict, InvalidValue
from tourviews.storage.registry import GOAL, KEEP, NAME, ORG, UUID, Principal, Tour


@dataclass(frozen=True)
class Context:
    """What the API's routes work with: the operations, and who may ask for them."""

    operations: Operations
    authenticator: Authenticator


class ApiError(Exception):
    """An answer other than success, as ``{"error": ..., "field": ...}``."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        self.status = status
        self.error = error
        self.field = field


class ErrorBody(BaseModel):
    error: str
    field: str | None = None


def _errors(texts: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody, "description": text} for code, text in texts.items()}


OWNER_ERRORS = _errors(
    {
        400: "A parameter or the body is malformed; `field` names it",
        401: "No token, or not a token of this service",
        404: "No such tour (or not one of the token's organization)",
    }
)
LIMIT = re.compile(r"[0-9]{1,4}")
OPERATOR_ERRORS = {**OWNER_ERRORS, **_errors({403: "The token is not an admin token"})}


def _shape(pattern: str) -> dict[str, Any]:
    """What the document says a value looks like; the domain code is what checks it."""
    return {"pattern": f"^{pattern}$"}


# Empty means the default, as absent does (the dashboard sends ``from=&to=``).
DATE = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0}]}
INTERVALS = {"enum": ["day", "hour"]}
FORMATS = {"enum": ["json", "csv"]}
ORIGIN = r"https?://[^/?#\[\]]{1,200}"  # tourviews.storage.registry.check_origin is the real rule


def install_error_handlers(app: FastAPI) -> None:
    """Every error answers JSON naming the field; never a traceback."""

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return JSONResponse({"error": exc.error, "field": exc.field}, exc.status)

    async def invalid_value(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidValue)
        return JSONResponse({"error": exc.message, "field": exc.field}, 400)

    async def conflicting_value(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Conflict)
        return JSONResponse({"error": exc.message, "field": exc.field}, 409)

    async def invalid_request(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0]
        if first.get("type") == "json_invalid":  # its location is a character offset
            return JSONResponse({"error": "body is not valid JSON", "field": None}, 400)
        where = [
            str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")
        ]
        field = ".".join(where) or None
        return JSONResponse(
            {"error": f"{field or 'body'}: {first.get('msg')}", "field": field}, 400
        )

    async def http_error(_: Request, exc: Exception) -> Response:
        # Starlette's own answers (unknown path, wrong method, unreadable body) in our shape.
        assert isinstance(exc, HTTPException)
        return JSONResponse(
            {"error": str(exc.detail), "field": None}, exc.status_code, headers=exc.headers
        )

    async def conflict(_: Request, exc: Exception) -> Response:
        # Two transactions wrote the same rows and DuckDB aborted this one: nothing of it
        # was kept, and trying again will do.
        return JSONResponse(
            {"error": "busy with a conflicting change, try again", "field": None},
            503,
            headers={"Retry-After": "1"},
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(duckdb.TransactionException, conflict)
    app.add_exception_handler(Conflict, conflicting_value)
    app.add_exception_handler(InvalidValue, invalid_value)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)


def context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


Ctx = Annotated[Context, Depends(context)]


def operations(ctx: Ctx) -> Operations:
    return ctx.operations


Ops = Annotated[Operations, Depends(operations)]


def principal(request: Request, ctx: Ctx) -> Principal:
    found = ctx.authenticator.principal(request.headers.get("authorization"))
    if found is None:
        raise ApiError(401, "a valid token is required: Authorization: Bearer <token>")
    return found


Caller = Annotated[Principal, Depends(principal)]


def admin(caller: Caller) -> Principal:
    if not caller.admin:
        raise ApiError(403, "this needs an admin token")
    return caller


Admin = Annotated[Principal, Depends(admin)]


def visible_tour(ops: Operations, caller: Principal, tour: str) -> Tour:
    """The tour if the caller may read it; another organization's tour is 'unknown' too."""
    found = ops.tours.get(tour)
    if found is None or not (caller.admin or found.org == caller.org):
        raise ApiError(404, "unknown tour", "tour")
    if caller.tour not in (None, tour):
        raise ApiError(404, "unknown tour", "tour")
    return found


owner = APIRouter(prefix="/v1", tags=["owner"], responses=OWNER_ERRORS)


FromDay = Annotated[
    str | None,
    Query(
        alias="from",
        description="first day, YYYY-MM-DD, in the tour's time zone (default: 29 days before `to`)",
        json_schema_extra=DATE,
    ),
]
ToDay = Annotated[
    str | None,
    Query(
        alias="to",
        description="last day, inclusive, in the tour's time zone (default: today there)",
        json_schema_extra=DATE,
    ),
]
Zone = Annotated[
    str | None,
    Query(
        description="an IANA time zone for this request's days and hours (default: the "
        "tour's, set with tours add --timezone)",
        json_schema_extra={"type": "string", "examples": ["Asia/Almaty"]},
    ),
]


TourName = Annotated[str, Path(json_schema_extra=_shape(NAME.pattern))]
FilterParameter = Annotated[
    list[str] | None,
    Query(
        description="NAME:KEY, a breakdown and one of its keys, like device:mobile: the "
        "figures of the visits it picks (repeatable: the visits all of them pick)",
        json_schema_extra={"examples": [["device:mobile", "entry_scene:lobby"]]},
    ),
]


@owner.get(
    "/tours/{tour}/stats",
    summary="Views, visitors and breakdowns of one tour",
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or the series as CSV"}},
)
def stats(
    ops: Ops,
    caller: Caller,
    tour: TourName,
    start: FromDay = None,
    end: ToDay = None,
    interval: Annotated[
        str | None, Query(description="day (default) or hour", json_schema_extra=INTERVALS)
    ] = None,
    format: Annotated[
        str, Query(description="json (default) or csv", json_schema_extra=FORMATS)
    ] = "json",
    limit: Annotated[
        str | None,
        Query(description=f"rows per breakdown, the most viewed first (default {BREAKDOWN_LIMIT})"),
    ] = None,
    tz: Zone = None,
    breakdown: Annotated[
        str | None,
        Query(description="with format=csv: this breakdown's rows (a name GET /v1/tours lists) "
              "rather than the series"),
    ] = None,
    filter: FilterParameter = None,
) -> Any:  # fmt: skip
    found = visible_tour(ops, caller, tour)
    if format not in ("json", "csv"):
        raise ApiError(400, "format must be 'json' or 'csv'", "format")
    chosen = None if breakdown is None else exported(breakdown, ops.with_geoip())
    if chosen is not None and format != "csv":
        raise ApiError(400, "breakdown is for format=csv: the JSON holds every breakdown",
                       "breakdown")  # fmt: skip
    rows = BREAKDOWN_LIMIT
    if limit is not None:
        # ASCII digits, few: "²" is a digit to str.isdigit, and int() refuses it.
        if not LIMIT.fullmatch(limit) or not 1 <= int(limit) <= MAX_BREAKDOWN_LIMIT:
            raise ApiError(400, f"limit must be a whole number from 1 to {MAX_BREAKDOWN_LIMIT}",
                           "limit")  # fmt: skip
        rows = int(limit)
    document = ops.stats(found, start, end, interval, tz, rows, filter or ())
    if format == "json":
        return document
    filename = f"{tour}-{document['from']}-{document['to']}-{document['interval']}.csv"
    if chosen is not None:
        filename = f"{tour}-{chosen.name}-{document['from']}-{document['to']}.csv"
    return Response(
        series_csv(document) if chosen is None else breakdown_csv(document, chosen),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@owner.get("/tours/{tour}/funnel", summary="Visits that took steps in order, step by step")
def funnel(
    ops: Ops,
    caller: Caller,
    tour: TourName,
    step: Annotated[
        list[str] | None,
        Query(
            description="view, scene:NAME or action:NAME (repeatable, in order; view first "
            "if at all)",
            json_schema_extra={"items": {"type": "string", **_shape(STEP.pattern)}},
        ),
    ] = None,
    start: FromDay = None,
    end: ToDay = None,
    tz: Zone = None,
) -> dict[str, Any]:
    return ops.funnel(visible_tour(ops, caller, tour), step or [], start, end, tz)


@owner.get("/tours/{tour}/now", summary="Visitors on the tour now: the last 5 minutes")
def now(ops: Ops, caller: Caller, tour: TourName) -> dict[str, int]:
    return {"visitors": ops.visitors_now(visible_tour(ops, caller, tour))}


def readable(
    ops: Operations, caller: Principal, start: str | None, end: str | None, tz: str | None
) -> tuple[Period, Mapping[str, Tour], list[str]]:
    """The period of a listing of tours (in days of UTC or ``tz``), the registered tours,
    and the IDs of those the caller may read."""
    period = ops.period("UTC" if tz is None else tz, start, end, None)
    registered = ops.tours  # one snapshot: an admin may change tours meanwhile
    mine = sorted(
        t.tour for t in registered.values()
        if (caller.admin or t.org == caller.org) and caller.tour in (None, t.tour)
    )  # fmt: skip
    return period, registered, mine


@owner.get("/tours", summary="The organization's tours with their totals")
def tours(
    ops: Ops, caller: Caller, start: FromDay = None, end: ToDay = None, tz: Zone = None
) -> dict[str, Any]:
    period, registered, mine = readable(ops, caller, start, end, tz)
    totals = ops.totals((registered[tour] for tour in mine), start, end, tz)
    return {
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "operator": caller.admin,  # the dashboard shows the operator's views only then
        "tours": [
            {
                "tour": tour,
                "org": registered[tour].org,
                "timezone": registered[tour].timezone,
                "totals": totals[tour],
            }
            for tour in mine
        ],
        # the dashboard's tables, in order: here, as it reads this answer first anyway
        "breakdowns": [breakdown.listed() for breakdown in breakdowns.shown(ops.with_geoip())],
    }


@owner.get("/overview", summary="Every tour of the organization, against the period before")
def tours_overview(
    ops: Ops, caller: Caller, start: FromDay = None, end: ToDay = None, tz: Zone = None
) -> dict[str, Any]:
    period, registered, mine = readable(ops, caller, start, end, tz)
    before = period.before()
    found = ops.overview((registered[tour] for tour in mine), start, end, tz)
    return {
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "previous": {"from": before.first.isoformat(), "to": before.last.isoformat()},
        "tours": [
            {"tour": tour, "org": registered[tour].org, "timezone": registered[tour].timezone,
             **found[tour]}
            for tour in mine
        ],
    }  # fmt: skip


public = APIRouter(prefix="/v1", tags=["public"])
# Read by anyone, from any page, and cached by browsers and CDNs for a minute: a
# popular tour's counter costs one query a minute, not one per page view.
PUBLIC_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=60"}
NO_COUNTER = _errors({404: "No such tour, or it has no public counter"})


def _counted(ops: Operations, tour: str) -> int:
    found = ops.tours.get(tour)
    if found is None or not found.public_counter:
        raise ApiError(404, "no public counter for this tour", "tour")
    return ops.views_to_date(found)


@public.get("/tours/{tour}/counter", summary="A tour's views to date, if it opted in",
            responses=NO_COUNTER)  # fmt: skip
def counter(ops: Ops, tour: TourName) -> JSONResponse:
    return JSONResponse({"tour": tour, "views": _counted(ops, tour)}, headers=PUBLIC_HEADERS)


@public.get(
    "/tours/{tour}/counter.svg",
    summary="The same, as a badge",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, **NO_COUNTER},
)
def counter_badge(ops: Ops, tour: TourName) -> Response:
    return Response(badge(_counted(ops, tour)), media_type="image/svg+xml", headers=PUBLIC_HEADERS)


def badge(views: int) -> str:
    """A flat badge, "views | 1,234", sized by its text (no font is loaded)."""
    label, value = "views", f"{views:,}"
    left, right = 8 + 7 * len(label), 8 + 7 * len(value)
    width = left + right
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{label}: {value}"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="#2563eb"/>'
        '<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" '
        f'text-anchor="middle"><text x="{left / 2}" y="14">{label}</text>'
        f'<text x="{left + right / 2}" y="14">{value}</text></g></svg>'
    )


operator = APIRouter(prefix="/v1/admin", tags=["operator"], responses=OPERATOR_ERRORS)


@operator.get("/abuse", summary="What was not counted, by reason, and who sent it")
def abuse(ops: Ops, _: Admin, start: FromDay = None, end: ToDay = None) -> dict[str, Any]:
    return ops.abuse(start, end)


@operator.get(
    "/report",
    summary="An organization's weekly report: an e-mail-ready HTML page, or its data",
    responses={
        200: {"content": {"text/html": {}}, "description": "HTML, or with format=json the data"},
        **_errors({404: "No tour is registered for the organization"}),
    },
)
def report(
    ops: Ops,
    _: Admin,
    org: Annotated[
        str | None,
        Query(description="the organization (or give tour)", json_schema_extra=_shape(ORG.pattern)),
    ] = None,
    tour: Annotated[
        str | None,
        Query(
            description="one tour: its own report (or give org)",
            json_schema_extra=_shape(NAME.pattern),
        ),
    ] = None,
    week: Annotated[
        str | None,
        Query(
            description="an ISO week (2026-W48) or a day of it; default: the last complete week",
            json_schema_extra={
                "anyOf": [{"type": "string", **_shape(ISO_WEEK.pattern)}, *DATE["anyOf"]]
            },
        ),
    ] = None,
    format: Annotated[
        str,
        Query(description="html (default) or json", json_schema_extra={"enum": ["html", "json"]}),
    ] = "html",
    filter: FilterParameter = None,
) -> Any:
    if format not in ("html", "json"):
        raise ApiError(400, "format must be 'html' or 'json'", "format")
    if (org is None) == (tour is None):
        raise ApiError(400, "give either org (its tours' report) or tour (its own)", "org")
    try:
        if tour is not None:
            found = ops.tours.get(tour)
            if found is None:
                raise ApiError(404, "unknown tour", "tour")
            document = ops.tour_report(found, week, filter or ())
        else:
            assert org is not None
            document = ops.report(org, week, filter or ())
    except UnknownOrganization as exc:
        raise ApiError(404, exc.message, "org") from None
    return document if format == "json" else HTMLResponse(html(document))


class TourBody(BaseModel):
    org: str = Field(
        description="the organization that owns the tour", json_schema_extra=_shape(ORG.pattern)
    )
    origins: list[str] | None = Field(
        default=None,
        description="origins allowed to embed it, like https://tours.example.com; empty: "
        "any; not given: a new tour allows any, an existing one keeps its list",
        json_schema_extra={"items": {"type": "string", **_shape(ORIGIN)}},
    )
    scenes: list[str] | None = Field(
        default=None,
        description="the tour's scenes: once declared, only these count; null: any, up to "
        "the server's --max-scenes; not given: an existing tour keeps its scenes",
        json_schema_extra={"items": {"type": "string", **_shape(NAME.pattern)}},
    )
    public_counter: bool | None = Field(
        default=None,
        description="its view count is readable without a token at /v1/tours/{tour}/counter; "
        "not given: a new tour has none, an existing one keeps its setting",
    )
    timezone: str | None = Field(
        default=None,
        description="the IANA time zone of the owner's days and hours, like Asia/Almaty; "
        "not given: a new tour is in UTC, an existing one keeps its zone",
        json_schema_extra={"examples": ["Asia/Almaty"]},
    )
    goals: list[str] | None = Field(
        default=None,
        description="what a visit should reach: scene:NAME or action:NAME, each with its "
        "conversion in the stats; not given: a new tour has none, an existing one keeps its",
        json_schema_extra={"items": {"type": "string", **_shape(GOAL.pattern)}},
    )
    move: bool = Field(
        default=False,
        description="move an existing tour, with its history, to another organization "
        "(without it, a change of organization answers 409)",
    )


class TourOut(BaseModel):
    tour: str
    org: str
    origins: list[str]
    scenes: list[str] | None = None
    public_counter: bool = False
    timezone: str = "UTC"
    goals: list[str] = []


def _tour_out(tour: Tour) -> TourOut:
    return TourOut(**tour.document())


@operator.put(
    "/tours/{tour}",
    summary="Register or update a tour (idempotent)",
    responses=_errors({409: "The tour belongs to another organization, and move is not true"}),
)
def put_tour(ops: Ops, _: Admin, tour: TourName, body: TourBody) -> TourOut:
    scenes = body.scenes if "scenes" in body.model_fields_set else KEEP
    return _tour_out(
        ops.put_tour(
            tour,
            body.org,
            body.origins,
            scenes,
            body.move,
            body.public_counter,
            body.timezone,
            body.goals,
        )
    )


class ReportTo(BaseModel):
    report_to: list[str] = Field(
        description="the addresses the tour's own weekly report goes to; empty: none",
        json_schema_extra={"items": {"type": "string", "format": "email"}},
    )


@operator.put("/tours/{tour}/report", summary="Where the tour's own weekly report goes")
def put_report_to(ops: Ops, _: Admin, tour: TourName, body: ReportTo) -> dict[str, Any]:
    if tour not in ops.tours:
        raise ApiError(404, "unknown tour", "tour")
    return {"tour": tour, "report_to": list(ops.set_report_to(tour, body.report_to))}


@operator.get("/tours/{tour}/report", summary="Where the tour's own weekly report goes")
def get_report_to(ops: Ops, _: Admin, tour: TourName) -> dict[str, Any]:
    found = ops.tours.get(tour)
    if found is None:
        raise ApiError(404, "unknown tour", "tour")
    return {"tour": tour, "report_to": list(ops.report_to(found))}


@operator.delete("/tours/{tour}", summary="Unregister a tour and delete its history")
def delete_tour(ops: Ops, _: Admin, tour: TourName) -> dict[str, bool]:
    if not ops.delete_tour(tour):
        raise ApiError(404, "unknown tour", "tour")
    return {"deleted": True}


@operator.get("/tours", summary="Every registered tour, of every organization")
def list_tours(ops: Ops, _: Admin) -> list[TourOut]:
    return [_tour_out(tour) for tour in ops.list_tours()]


class TokenBody(BaseModel):
    org: str = Field(json_schema_extra=_shape(ORG.pattern))
    admin: bool = False
    tour: str | None = Field(
        default=None,
        description="a read-only token for this tour of the organization alone",
        json_schema_extra=_shape(NAME.pattern),
    )


@operator.post("/tokens", summary="Create a token; it is shown this once")
def create_token(ops: Ops, _: Admin, body: TokenBody) -> dict[str, str]:
    return {"token": ops.create_token(body.org, body.admin, body.tour)}


@operator.get("/tokens", summary="Every token: id, organization, admin, tour, created, last used")
def list_tokens(ops: Ops, _: Admin) -> list[dict[str, Any]]:
    return ops.list_tokens()


@operator.delete("/tokens/{token_id}", summary="Revoke a token: it answers 401 at once")
def revoke_token(ops: Ops, _: Admin, token_id: str) -> dict[str, bool]:
    if not ops.revoke_token(token_id):
        raise ApiError(404, "unknown token", "id")
    return {"revoked": True}


@operator.delete("/visitors/{visitor}", summary="Erase every stored event of a visitor")
def forget_visitor(
    ops: Ops, _: Admin, visitor: Annotated[str, Path(json_schema_extra=_shape(UUID.pattern))]
) -> dict[str, int]:
    return {"deleted": ops.forget(visitor)}


@operator.post("/compact", summary="Rewrite the database so that deleted data is gone")
def compact_now(ops: Ops, _: Admin) -> dict[str, int]:
    before, after = ops.compact()
    return {"bytes_before": before, "bytes_after": after}


@operator.post("/purge", summary="Apply retention now (the service also does daily)")
def purge_now(ops: Ops, _: Admin) -> dict[str, int]:
    return {"deleted": ops.purge()}
