"""The ``tourviews`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, NoReturn

import orjson

from tourviews.analytics.export import breakdown_csv, exported
from tourviews.analytics.stats import series_csv
from tourviews.control import Backend, CommandError, connect
from tourviews.ingest.rules.throttle import Rate
from tourviews.report import deliver, delivery
from tourviews.settings import REDIS_DURABILITIES, REDIS_ENV, Settings, default_data_dir
from tourviews.storage.errors import InvalidValue, StorageError
from tourviews.storage.registry import check_name

FLAGS = {"tour": "TOUR", "from": "--from", "to": "--to", "interval": "--interval", "org": "--org",
         "origins": "--origin", "scenes": "--scene", "visitor": "VISITOR",
         "data": "--data", "week": "--week", "smtp": "--smtp", "out": "--out",
         "timezone": "--timezone", "tz": "--tz", "goals": "--goal", "step": "--step",
         "breakdown": "--breakdown", "report_to": "--report-to", "filter": "--filter"}  # fmt: skip
# What a flag of serve or ingest leaves out: the default of its setting, defined in Settings.
DEFAULT: dict[str, Any] = {f.name: f.default for f in fields(Settings) if f.default is not MISSING}


class _Parser(argparse.ArgumentParser):
    """Mistakes on the command line are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"tourviews: error: {message}\n")


def _tour(value: str) -> str:
    """A tour ID, checked here: through a running server a malformed one would reach a URL."""
    try:
        return check_name("tour", value)
    except InvalidValue as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _listen_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--host", default=DEFAULT["host"])
    command.add_argument("--port", type=int, default=DEFAULT["port"])
    command.add_argument(
        "--trusted-proxy", action="append", default=[], metavar="CIDR",
        help="a proxy whose X-Forwarded-For is believed (repeatable)",
    )  # fmt: skip


def _connection_flags(command: argparse.ArgumentParser) -> None:
    connections = command.add_argument_group("connections (docs/hardening.md)")
    connections.add_argument(
        "--limit-concurrency", type=int, default=DEFAULT["limit_concurrency"], metavar="N",
        help="open connections and requests in progress; beyond it 503 (default %(default)s)",
    )  # fmt: skip
    connections.add_argument(
        "--timeout-keep-alive", type=int, default=DEFAULT["timeout_keep_alive"], metavar="SECONDS",
        help="close a kept-alive connection idle this long (default %(default)s)",
    )  # fmt: skip
    connections.add_argument(
        "--timeout-request", type=float, default=DEFAULT["timeout_request"], metavar="SECONDS",
        help="close a connection whose request has not arrived whole in this time "
        "(default %(default)s)",
    )  # fmt: skip


def _workers_flags(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument(
        "--workers", type=int, default=DEFAULT["workers"], metavar="N",
        help=f"{what}; SIGHUP replaces them one at a time (default %(default)s)",
    )  # fmt: skip
    # a worker's: the socket its supervisor listens on, and the pipe to say it is ready
    command.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    command.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)


def _geoip_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--geoip", type=Path, metavar="FILE", default=DEFAULT["geoip"],
        help="count each view's country, looked up in this MaxMind-format database "
        "(DB-IP Lite Country or GeoLite2 Country; docs/countries.md)",
    )  # fmt: skip


def _redis_flags(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("Redis mode (docs/scaling.md)")
    group.add_argument(
        "--redis", metavar="URL", default=os.environ.get(REDIS_ENV) or DEFAULT["redis_url"],
        help=f"share the ledger through this Redis: the primary drains it "
        f"(redis://HOST:PORT/DB; default ${REDIS_ENV}, which keeps a password off the "
        f"command line)",
    )  # fmt: skip
    group.add_argument(
        "--redis-durability", choices=REDIS_DURABILITIES, default=DEFAULT["redis_durability"],
        help="strict (default): refuse a Redis that does not fsync every write",
    )  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    data = _Parser(add_help=False)
    data.add_argument(
        "--data", type=Path, default=argparse.SUPPRESS,
        help="data directory (default: $TOURVIEWS_DATA or ./data)",
    )  # fmt: skip
    parser = _Parser(
        prog="tourviews", parents=[data], description="Privacy-preserving tour view analytics."
    )
    # Not required here: argparse would then name the missing command before an unknown
    # flag (main asks for the command itself).
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[data], help="run the service")
    _listen_flags(serve)
    for prefix, meaning in (
        ("ip_prefix", "hash only this prefix"),
        ("limit_prefix", "limits and the rotation guard key on this prefix (%(default)s)"),
    ):
        for version in ("v4", "v6"):
            setting = f"{prefix}_{version}"
            serve.add_argument(
                f"--{setting.replace('_', '-')}",
                type=int,
                default=DEFAULT[setting],
                metavar="BITS",
                help=meaning,
            )
    # A flag in MINUTES holds a setting kept in seconds.
    for flag, setting, unit, meaning in (
        ("--max-scenes", "max_scenes", "N",
         "scene names counted per tour that declares none (%(default)s)"),
        ("--dedup-window", "dedup_window_seconds", "MINUTES",
         "a beacon repeating the visitor's last counted one this soon is a duplicate"),
        ("--raw-retention-days", "raw_retention_days", "DAYS",
         "raw events older than this go once their day is rolled up (%(default)s)"),
        ("--compact-delay", "compact_delay_seconds", "MINUTES",
         "rewrite erased data out of the file this long after it is deleted (%(default)g)"),
        ("--rotation-limit", "rotation_limit", "K",
         "visitor IDs one address may present to one tour per window"),
    ):  # fmt: skip
        minutes = unit == "MINUTES"
        serve.add_argument(
            flag,
            type=float if minutes else int,
            default=DEFAULT[setting] / 60 if minutes else DEFAULT[setting],
            metavar=unit,
            help=meaning,
        )
    limits = serve.add_argument_group("rate limits (429 beyond them)")
    for name, unit, seconds in (("ip", "PER_MINUTE", 60), ("visitor", "PER_MINUTE", 60),
                                ("tour", "PER_SECOND", 1)):  # fmt: skip
        rate: Rate = DEFAULT[f"{name}_rate"]
        limits.add_argument(
            f"--{name}-rate", type=float, default=rate.per_second * seconds, metavar=unit
        )
        limits.add_argument(f"--{name}-burst", type=int, default=rate.burst, metavar="N")
    _connection_flags(serve)
    serve.add_argument(
        "--quickstart", action="store_true",
        help="on an empty data directory, register tour 'demo' and print an admin token",
    )  # fmt: skip
    _geoip_flag(serve)
    _redis_flags(serve)
    _workers_flags(
        serve,
        "processes serving the port in front of the primary, which owns "
        "the database (with --redis)",
    )
    ingest = commands.add_parser(
        "ingest", help="run a stateless ingest node (beacons only) on Redis",
        description="An ingest node: the beacon endpoint, the page scripts and /healthz, "
        "judging as the primary that shares its Redis. TOURVIEWS_SECRET must be the "
        "primary's instance secret.",
    )  # fmt: skip
    _redis_flags(ingest)
    _listen_flags(ingest)
    _geoip_flag(ingest)
    _connection_flags(ingest)
    _workers_flags(ingest, "processes on one listening socket")
    # a front worker's of serve --workers N: the primary's socket
    ingest.add_argument("--primary-socket", type=Path, help=argparse.SUPPRESS)

    tours = commands.add_parser("tours", help="register and list tours").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = tours.add_parser("add", parents=[data], help="register or update a tour")
    add.add_argument("tour", type=_tour, metavar="TOUR")
    add.add_argument("--org", required=True)
    add.add_argument(
        "--origin", action="append", default=None, metavar="URL",
        help="a page origin allowed to embed it (repeatable); not given: kept, or any",
    )  # fmt: skip
    add.add_argument(
        "--scene", action="append", default=None, metavar="NAME",
        help="a scene of the tour (repeatable); once declared, only these count",
    )  # fmt: skip
    add.add_argument(
        "--public-counter", action=argparse.BooleanOptionalAction, default=None,
        help="its view count is readable without a token (/v1/tours/TOUR/counter)",
    )  # fmt: skip
    add.add_argument(
        "--timezone", metavar="ZONE",
        help="the IANA time zone of its days, like Asia/Almaty; not given: kept, or UTC",
    )  # fmt: skip
    add.add_argument(
        "--goal", action="append", default=None, metavar="GOAL",
        help="scene:NAME or action:NAME, a visit's goal (repeatable); not given: kept, or none",
    )  # fmt: skip
    add.add_argument("--no-goals", action="store_true", help="the tour has no goal any more")
    add.add_argument(
        "--move", action="store_true",
        help="move an existing tour, with its history, to the organization --org",
    )  # fmt: skip
    recipients = add.add_mutually_exclusive_group()
    recipients.add_argument(
        "--report-to", action="append", default=None, metavar="ADDR",
        help="send the tour's own weekly report here (repeatable; replaces the addresses)",
    )  # fmt: skip
    recipients.add_argument(
        "--no-report-to", action="store_true", help="no weekly report of its own any more"
    )
    tours.add_parser("list", parents=[data], help="list every tour")

    tokens = commands.add_parser("tokens", help="issue, list and revoke tokens").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = tokens.add_parser("create", parents=[data], help="create a token (printed once)")
    create.add_argument("--org", required=True)
    create.add_argument("--admin", action="store_true")
    create.add_argument(
        "--tour", type=_tour, help="a read-only token for this tour alone (a link for a client)"
    )
    listing = tokens.add_parser("list", parents=[data], help="every token, never the token")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    revoke = tokens.add_parser("revoke", parents=[data], help="revoke a token: 401 at once")
    revoke.add_argument("id", metavar="ID", help="the token's id, from tokens list")

    stats = commands.add_parser("stats", parents=[data], help="views and visitors of a tour")
    stats.add_argument("tour", type=_tour, metavar="TOUR")
    stats.add_argument("--from", dest="start", metavar="YYYY-MM-DD")
    stats.add_argument("--to", dest="end", metavar="YYYY-MM-DD")
    stats.add_argument("--interval", choices=("day", "hour"))
    stats.add_argument("--tz", metavar="ZONE", help="days in this IANA zone (default: the tour's)")
    stats.add_argument("--format", choices=("table", "json", "csv"), default="table")
    stats.add_argument(
        "--breakdown",
        metavar="NAME",
        help="with --format csv: this breakdown's rows rather than the series",
    )

    _filter_flag(stats)

    funnel = commands.add_parser(
        "funnel", parents=[data], help="visits that took steps in order, step by step"
    )
    funnel.add_argument("tour", type=_tour, metavar="TOUR")
    funnel.add_argument(
        "--step", action="append", required=True, metavar="STEP",
        help="view, scene:NAME or action:NAME (repeatable, in order)",
    )  # fmt: skip
    funnel.add_argument("--from", dest="start", metavar="YYYY-MM-DD")
    funnel.add_argument("--to", dest="end", metavar="YYYY-MM-DD")
    funnel.add_argument("--tz", metavar="ZONE", help="days in this IANA zone (default: the tour's)")
    funnel.add_argument("--format", choices=("table", "json"), default="table")

    abuse = commands.add_parser(
        "abuse", parents=[data], help="what was not counted, and who sent it"
    )
    abuse.add_argument("--from", dest="start", metavar="YYYY-MM-DD")
    abuse.add_argument("--to", dest="end", metavar="YYYY-MM-DD")
    abuse.add_argument("--format", choices=("table", "json"), default="table")

    report = commands.add_parser(
        "report", parents=[data], help="an organization's weekly report, as an e-mail"
    )
    whose = report.add_mutually_exclusive_group(required=True)
    whose.add_argument("--org", help="the report of the organization's tours")
    whose.add_argument(
        "--tour", type=_tour, metavar="TOUR",
        help="the tour's own report; with --smtp, to its --report-to addresses unless --to",
    )  # fmt: skip
    report.add_argument(
        "--week", metavar="WEEK", help="2026-W48, or a day of it (default: the last complete week)"
    )
    report.add_argument("--out", type=Path, metavar="FILE", help="write the HTML here")
    _filter_flag(report)
    report.add_argument(
        "--smtp",
        metavar="URL",
        help="send it: smtp://host[:port] or smtps://[user:pass@]host[:port]",
    )
    report.add_argument("--from", dest="sender", metavar="ADDR", help="the sender (with --smtp)")
    report.add_argument(
        "--to", dest="recipients", action="append", metavar="ADDR", help="a recipient (repeatable)"
    )

    demo = commands.add_parser("demo", parents=[data], help="a demo tour with a week of traffic")
    demo.add_argument("--days", type=int, default=7, help="days of traffic to simulate")
    demo.add_argument("--serve", action="store_true", help="then serve, to open the dashboard")
    demo.add_argument("--port", type=int, default=DEFAULT["port"])

    forget = commands.add_parser("forget", parents=[data], help="erase every event of a visitor")
    forget.add_argument("visitor", metavar="VISITOR")
    commands.add_parser("purge", parents=[data], help="apply retention now")
    commands.add_parser(
        "compact", parents=[data], help="rewrite the database so that deleted data is gone"
    )
    return parser


def _filter_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--filter", dest="filters", action="append", default=[], metavar="NAME:KEY",
        help="the visits with this key of a breakdown, like device:mobile (repeatable: the "
        "visits all of them pick)",
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("a command is required (tourviews --help lists them)")
    data_dir: Path = getattr(args, "data", None) or default_data_dir()
    command = _command(args)
    try:
        _check_data_dir(data_dir, command)
        if command in PROCESSES:
            given = list(sys.argv[1:] if argv is None else argv)  # for the primary serve starts
            return PROCESSES[command](data_dir, args, given)
        backend = connect(data_dir)
        try:
            print(COMMANDS[command](backend, args), end="")
        finally:
            backend.close()
        return 0
    except InvalidValue as exc:
        flag = FLAGS.get(exc.field, exc.field)
        print(f"tourviews: error: {flag}: {exc.message}", file=sys.stderr)
    except (StorageError, CommandError, ValueError) as exc:
        print(f"tourviews: error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


def _command(args: argparse.Namespace) -> str:
    """The command as the tables below name it: ``stats``, ``tokens create``."""
    action: str | None = getattr(args, "action", None)
    return f"{args.command} {action}" if action else str(args.command)


# Commands that only read (or work on what is there): they create no data directory.
READERS = {"stats", "funnel", "abuse", "report", "forget", "purge", "compact", "tours list",
           "tokens list", "tokens revoke"}  # fmt: skip


def _check_data_dir(data_dir: Path, command: str) -> None:
    if data_dir.exists() and not data_dir.is_dir():
        raise InvalidValue("data", f"{data_dir} is a file, not a directory")
    if command in READERS and not data_dir.exists():
        raise InvalidValue("data", f"{data_dir} does not exist")


def _serve(data_dir: Path, args: argparse.Namespace, given: list[str]) -> int:
    from tourviews.server import serve  # uvicorn is needed by these commands only

    settings = serve_settings(data_dir, args)
    if args.quickstart and args.workers > 1:
        raise CommandError("--quickstart runs one process: leave out --workers")
    serve(settings, args.quickstart, given, args.listen_fd, args.ready_fd)
    return 0


def serve_settings(data_dir: Path, args: argparse.Namespace) -> Settings:
    """The settings ``serve``'s flags give (the flags say minutes where Settings has seconds)."""
    return Settings(
        data_dir=data_dir,
        host=args.host,
        port=args.port,
        trusted_proxies=Settings.proxies(args.trusted_proxy),
        ip_prefix_v4=args.ip_prefix_v4,
        ip_prefix_v6=args.ip_prefix_v6,
        limit_prefix_v4=args.limit_prefix_v4,
        limit_prefix_v6=args.limit_prefix_v6,
        max_scenes=args.max_scenes,
        dedup_window_seconds=args.dedup_window * 60,
        rotation_limit=args.rotation_limit,
        ip_rate=_rate("ip", args.ip_rate / 60, args.ip_burst),
        visitor_rate=_rate("visitor", args.visitor_rate / 60, args.visitor_burst),
        tour_rate=_rate("tour", args.tour_rate, args.tour_burst),
        raw_retention_days=args.raw_retention_days,
        compact_delay_seconds=args.compact_delay * 60,
        limit_concurrency=args.limit_concurrency,
        timeout_keep_alive=args.timeout_keep_alive,
        timeout_request=args.timeout_request,
        redis_url=args.redis,
        redis_durability=args.redis_durability,
        workers=args.workers,
        geoip=args.geoip,
    )


def _ingest(data_dir: Path, args: argparse.Namespace, given: list[str]) -> int:
    from tourviews.server import serve_node

    serve_node(ingest_settings(args), args.listen_fd, args.ready_fd, args.primary_socket)
    return 0


def ingest_settings(args: argparse.Namespace) -> Settings:
    """The settings ``ingest``'s flags give; the node judges by the primary's (published)."""
    if args.redis is None:
        raise CommandError(f"--redis URL is required (or {REDIS_ENV})")
    return Settings(
        host=args.host, port=args.port, trusted_proxies=Settings.proxies(args.trusted_proxy),
        redis_url=args.redis, redis_durability=args.redis_durability, workers=args.workers,
        limit_concurrency=args.limit_concurrency, timeout_keep_alive=args.timeout_keep_alive,
        timeout_request=args.timeout_request, geoip=args.geoip,
    )  # fmt: skip


def _demo(data_dir: Path, args: argparse.Namespace, given: list[str]) -> int:
    from tourviews.control import Local, running_server
    from tourviews.demo import TOUR, run_demo
    from tourviews.storage.database import DATABASE_FILE

    if running_server(data_dir):
        raise CommandError(f"a server is running on {data_dir}: stop it, or use another --data")
    if (data_dir / DATABASE_FILE).exists():
        local = Local(data_dir)
        try:
            others = sorted(set(local.operations.tours) - {TOUR})
        finally:
            local.close()
        if others:  # the demo would write thousands of simulated beacons among real data
            raise CommandError(f"{data_dir} holds tours other than the demo's ({others[0]}, "
                               "...): give the demo a directory of its own (--data)")  # fmt: skip
    if not 1 <= args.days <= 30:
        raise ValueError("--days must be between 1 and 30")
    settings = Settings(data_dir=data_dir, port=args.port)
    token, sent = run_demo(settings, days=args.days)
    backend = connect(data_dir)
    try:
        print(_table(backend.stats(TOUR, None, None, None)))
        print(_abuse_table(backend.abuse(None, None)))
    finally:
        backend.close()
    url = f"http://127.0.0.1:{args.port}/dashboard#token={token}"
    print(f"{sent} beacons sent through the pipeline. The token of organization 'demo' "
          f"(shown once):\n\n    {token}\n\nThe dashboard, while the service runs:\n\n"
          f"    {url}\n")  # fmt: skip
    if args.serve:
        from tourviews.server import serve

        serve(settings)
    else:
        print(f"Serve it with: tourviews serve --data {data_dir}   (or: tourviews demo --serve)")
    return 0


def _rate(name: str, per_second: float, burst: int) -> Rate:
    if not per_second > 0 or burst < 1:
        raise ValueError(f"--{name}-rate must be positive and --{name}-burst at least 1")
    return Rate(per_second, burst)


def _add_tour(backend: Backend, args: argparse.Namespace) -> str:
    tour = backend.put_tour(
        args.tour, args.org, args.origin, args.scene, args.move, args.public_counter,
        args.timezone, [] if args.no_goals else args.goal,
    )  # fmt: skip
    zone = tour.get("timezone", "UTC")
    done = f"registered {tour['tour']} for {tour['org']}" + (
        f" in {zone}\n" if zone != "UTC" else "\n"
    )
    if args.report_to is not None or args.no_report_to:
        chosen = backend.set_report_to(tour["tour"], args.report_to or [])
        done += f"its weekly report goes to {', '.join(chosen)}\n" if chosen else (
            "it has no weekly report of its own\n")  # fmt: skip
    return done


def _list_tours(backend: Backend, args: argparse.Namespace) -> str:
    lines = [
        f"{t['tour']:<24} {t['org']:<24} {' '.join(t['origins']) or '*'}"
        + (f"  scenes: {' '.join(t['scenes'])}" if t.get("scenes") is not None else "")
        + ("  public counter" if t.get("public_counter") else "")
        + (f"  {t['timezone']}" if t.get("timezone", "UTC") != "UTC" else "")
        + (f"  goals: {' '.join(t['goals'])}" if t.get("goals") else "")
        for t in backend.list_tours()
    ]
    return "".join(line + "\n" for line in lines) or "no tours registered\n"


def _create_token(backend: Backend, args: argparse.Namespace) -> str:
    return backend.create_token(args.org, args.admin, args.tour) + "\n"


def _list_tokens(backend: Backend, args: argparse.Namespace) -> str:
    tokens = backend.list_tokens()
    if args.format == "json":
        return _json(tokens)
    lines = [f"{'id':<14}{'org':<24}{'kind':<18}{'created':<22}last used"]
    lines += [
        f"{t['id']:<14}{t['org']:<24}"
        f"{'admin' if t['admin'] else 'tour ' + t['tour'] if t['tour'] else 'owner':<18}"
        f"{t['created']:<22}{t['last_used'] or 'never'}"
        for t in tokens
    ]
    return "\n".join(lines) + "\n"


def _revoke_token(backend: Backend, args: argparse.Namespace) -> str:
    backend.revoke_token(args.id)
    return f"revoked {args.id}\n"


def _stats(backend: Backend, args: argparse.Namespace) -> str:
    if args.breakdown is not None and args.format != "csv":
        raise InvalidValue("breakdown", "is for --format csv: the others show every breakdown")
    document = backend.stats(args.tour, args.start, args.end, args.interval, args.tz, args.filters)
    # the document holds the breakdowns shown: countries only where the server looks them up
    geoip = "country" in document.get("breakdown", {})
    chosen = None if args.breakdown is None else exported(args.breakdown, geoip)
    if args.format == "json":
        return _json(document)
    if chosen is not None:
        return breakdown_csv(document, chosen)
    if args.format == "csv":
        return series_csv(document)
    return _table(document)


def _funnel(backend: Backend, args: argparse.Namespace) -> str:
    document = backend.funnel(args.tour, args.step, args.start, args.end, args.tz)
    if args.format == "json":
        return _json(document)
    return funnel_table(document)


def funnel_table(document: dict[str, Any]) -> str:
    """Each step with its visits, its share of the first step's and the drop from the last."""
    steps = document["steps"]
    lines = [
        f"{document['tour']}  {document['from']} to {document['to']}  "
        f"({document.get('timezone', 'UTC')})",
        "",
        f"{'step':<40}{'visits':>10}{'of first':>10}{'drop':>10}",
    ]
    first = steps[0]["visits"] if steps else 0
    for at, step in enumerate(steps):
        before = steps[at - 1]["visits"] if at else step["visits"]
        share = f"{step['visits'] / first:.0%}" if first else "-"
        drop = f"{(before - step['visits']) / before:.0%}" if at and before else ""
        lines.append(f"{step['step'][:39]:<40}{step['visits']:>10,}{share:>10}{drop:>10}")
    return "\n".join(lines) + "\n"


def _abuse(backend: Backend, args: argparse.Namespace) -> str:
    report = backend.abuse(args.start, args.end)
    return _json(report) if args.format == "json" else _abuse_table(report)


def _report(backend: Backend, args: argparse.Namespace) -> str:
    recipients = args.recipients
    if args.tour is not None and args.smtp is not None and not recipients:
        recipients = backend.report_to(args.tour)
        if not recipients:
            raise InvalidValue("to", f"tour {args.tour} has no recipients: give --to, or "
                               f"tours add {args.tour} --report-to ADDR")  # fmt: skip
    where = delivery(args.smtp, args.sender, recipients, args.out)  # before the work
    if args.tour is not None:
        return deliver(backend.tour_report(args.tour, args.week, args.filters), where)
    return deliver(backend.report(args.org, args.week, args.filters), where)


def _forget(backend: Backend, args: argparse.Namespace) -> str:
    return f"deleted {backend.forget(args.visitor)} events of {args.visitor}\n"


def _purge(backend: Backend, args: argparse.Namespace) -> str:
    return f"deleted {backend.purge()} raw events past retention\n"


def _compact(backend: Backend, args: argparse.Namespace) -> str:
    before, after = backend.compact()
    return f"compacted the database: {before:,} bytes before, {after:,} after\n"


# Commands that are a process of their own: given the data directory, the parsed flags
# and the command line as given (serve starts its primary with it).
PROCESSES: dict[str, Callable[[Path, argparse.Namespace, list[str]], int]] = {
    "serve": _serve,
    "ingest": _ingest,
    "demo": _demo,
}
# Commands that are work for a data directory, through its server or on the file: what
# they print.
COMMANDS: dict[str, Callable[[Backend, argparse.Namespace], str]] = {
    "tours add": _add_tour,
    "tours list": _list_tours,
    "tokens create": _create_token,
    "tokens list": _list_tokens,
    "tokens revoke": _revoke_token,
    "stats": _stats,
    "funnel": _funnel,
    "abuse": _abuse,
    "report": _report,
    "forget": _forget,
    "purge": _purge,
    "compact": _compact,
}


def _json(document: Any) -> str:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


def _abuse_table(report: dict[str, Any]) -> str:
    totals = report["totals"]
    lines = [f"abuse  {report['from']} to {report['to']}", ""]
    lines += [f"{reason:<14}{count:>10}" for reason, count in totals.items()]
    lines += ["", f"{'top sources (IP hash)':<34}{'events':>10}{'throttled':>11}{'visitors':>10}"]
    lines += [
        f"{s['ip_hash']:<34}{s['events']:>10}{s['throttled']:>11}{s['visitors']:>10}"
        for s in report["top_sources"]
    ] or ["(none)"]
    lines += ["", f"{'top tours':<34}{'events':>10}{'not counted':>13}"]
    lines += [
        f"{t['tour']:<34}{t['events']:>10}{t['not_counted']:>13}" for t in report["top_tours"]
    ] or ["(none)"]
    return "\n".join(lines) + "\n"


SPARKS = " ▁▂▃▄▅▆▇█"


def sparkline(values: list[int]) -> str:
    """One character per value, scaled to the largest; zero is a blank."""
    top = max(values, default=0)
    return "".join(SPARKS[0 if v == 0 else max(1, round(v / top * 8))] for v in values)


def _table(document: dict[str, Any]) -> str:
    totals = document["totals"]
    exact = "exact" if totals["visitors_exact"] else "estimated from sketches"
    series = document["series"]
    hourly = document["interval"] == "hour"
    previous = document.get("previous", {})
    lines = [
        f"{document['tour']}  {document['from']} to {document['to']}  by {document['interval']}"
        f"  ({document.get('timezone', 'UTC')})",
        *(
            [f"the visits of {' and '.join(document['filters'])}"]
            if document.get("filters")
            else []
        ),
        f"views {totals['views']:,}{_change(totals['views'], previous.get('views'))}   "
        f"visitors {totals['visitors']:,}{_change(totals['visitors'], previous.get('visitors'))} "
        f"({exact})",
        f"visits {totals['visits']:,}   engaged {_duration(totals['engaged_seconds'])} "
        f"(median {_duration(totals['engaged_seconds_per_visit'])} a visit)   "
        f"scenes a visit {totals['scenes_per_visit']}   bounce {totals['bounce_rate']:.0%}",
        f"views    |{sparkline([entry['views'] for entry in series])}|",
        f"visitors |{sparkline([entry['visitors'] for entry in series])}|",
        "",
        f"{'start':<22}{'views':>10}{'visitors':>10}",
    ]
    for entry in series:
        start = entry["start"][:16].replace("T", " ") if hourly else entry["start"][:10]
        lines.append(f"{start:<22}{entry['views']:>10}{entry['visitors']:>10}")
    for dimension, rows in document["breakdown"].items():
        if rows:
            columns = [column for column in rows[0] if column != "key"]
            heads = "".join(f"{c.replace('_', ' '):>17}" for c in columns)
            lines += ["", f"{dimension:<22}{heads}"]
            lines += [
                f"{row['key'][:21]:<22}" + "".join(f"{row[c]:>17,}" for c in columns)
                for row in rows
            ]
    if document.get("transitions"):
        lines += ["", f"{'from':<22}{'to':<22}{'visits':>10}"]
        lines += [
            f"{move['from'][:21]:<22}{move['to'][:21]:<22}{move['visits']:>10,}"
            for move in document["transitions"]
        ]
    lines += _goal_lines(document)
    return "\n".join(lines) + "\n"


def _goal_lines(document: dict[str, Any]) -> list[str]:
    """The goals' conversion, each against the previous period's."""
    goals = document.get("goals") or []
    if not goals:
        return []
    before = {g["goal"]: g["visits"] for g in document.get("previous", {}).get("goals", [])}
    lines = ["", f"{'goal':<40}{'visits':>10}{'rate':>8}"]
    lines += [
        f"{g['goal'][:39]:<40}{g['visits']:>10,}{g['rate']:>8.1%}"
        f"{_change(g['visits'], before.get(g['goal']))}"
        for g in goals
    ]
    return lines


def _change(now: int, before: int | None) -> str:
    """The change against the previous period, like " ▲12%"; nothing without one."""
    if before is None:
        return ""
    if before == 0:
        return " (new)" if now else ""
    change = round((now - before) / before * 100)
    return f" {'▲' if change > 0 else '▼' if change < 0 else '='}{abs(change)}%"


def _duration(seconds: float) -> str:
    """12s, 4m05s, 3h07m: as the dashboard does, hours once there are any."""
    whole = round(seconds)
    if whole >= 3600:
        return f"{whole // 3600:,}h{whole % 3600 // 60:02d}m"
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"
