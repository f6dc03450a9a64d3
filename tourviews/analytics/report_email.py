"""The weekly report as an e-mail: its subject, an HTML part and a plain-text part.

Mail clients are not browsers, so the HTML keeps to what they all show: styles inline
(many drop ``<style>``), tables for layout, and charts drawn as table cells with a
height and a background colour. No SVG (Gmail strips it), no image (clients block
remote ones, and an attached one shows as a download), no script, nothing loaded
from elsewhere. Every name in it is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from html import escape
from typing import Any

from tourviews.analytics.breakdowns import reported
from tourviews.analytics.report import DETAILED, VIEWS, Change, change, figure_lines

# Fixed names, not the locale's: the report reads the same wherever it is made.
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DASH = "\N{EN DASH}"  # between two days, as in a printed date range

FONT = "font-family:Arial,Helvetica,sans-serif;"
INK, MUTED, RULE = "#1f2937", "#6b7280", "#e5e7eb"
THIS_WEEK, WEEK_BEFORE = "#2563eb", "#cbd5e1"
GOOD, BAD = "#15803d", "#b91c1c"
BAR_HEIGHT = 80  # pixels of the highest bar
TEXT_BAR = 24  # characters of the longest bar in the plain-text part


def subject(report: Mapping[str, Any]) -> str:
    """``tourviews weekly report: ORG, 23-29 Nov 2026`` (with an en dash); a tour's own
    report names the tour."""
    return f"tourviews weekly report: {about(report)}, {span(report['from'], report['to'])}"


def about(report: Mapping[str, Any]) -> str:
    """Whom the report is about: the tour of a tour's own report, else the organization."""
    return str(report.get("tour") or report["org"])


def span(first: str, last: str) -> str:
    """Two days as people write them: ``23-29 Nov 2026``, ``30 Nov - 6 Dec 2026`` (en dashes)."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}{DASH}{_day(end)} {end.year}"
    if start.year == end.year:
        return f"{_day(start)} {DASH} {_day(end)} {end.year}"
    return f"{_day(start)} {start.year} {DASH} {_day(end)} {end.year}"


def _day(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]}"


# The HTML part.


def html(report: Mapping[str, Any]) -> str:
    """The report as an e-mail-ready HTML page."""
    title = escape(subject(report))
    sections = [_header(report), _overview(report), *map(_section, report["details"])]
    if len(report["details"]) < len(report["tours"]):
        sections.append(
            _block(f'<p style="margin:0;color:{MUTED};font-size:13px;">{_left(report)}</p>')
        )
    sections.append(_footer())
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head>\n"
        f'<body style="margin:0;padding:0;background:#f3f4f6;">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="background:#f3f4f6;"><tr><td align="center" style="padding:24px 8px;">\n'
        '<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" '
        f'style="width:100%;max-width:600px;background:#ffffff;color:{INK};{FONT}">\n'
        + "\n".join(sections)
        + "\n</table>\n</td></tr></table>\n</body></html>\n"
    )


def _left(report: Mapping[str, Any]) -> str:
    """Why some tours have no section of their own."""
    return (
        f"The table lists all {len(report['tours'])} tours; a section is given to the "
        f"{DETAILED} most viewed at most, of those with views in either week."
    )


def _block(content: str, top: int = 24) -> str:
    return f'<tr><td style="padding:{top}px 24px 0 24px;">{content}</td></tr>'


def _header(report: Mapping[str, Any]) -> str:
    previous = report["previous"]
    return _block(
        f'<p style="margin:0;color:{MUTED};font-size:13px;">tourviews weekly report</p>'
        f'<h1 style="margin:4px 0 0 0;font-size:22px;">{escape(about(report))}</h1>'
        f'<p style="margin:4px 0 0 0;font-size:14px;">'
        f"{_nowrap(span(report['from'], report['to']))} ({escape(report['week'])}), "
        f"compared with {_nowrap(span(previous['from'], previous['to']))}</p>"
        + (f'<p style="margin:4px 0 0 0;font-size:14px;">{escape(filtered(report))}</p>'
           if report.get("filters") else "")
    )  # fmt: skip


def filtered(report: Mapping[str, Any]) -> str:
    """The line saying which visits a filtered report counts."""
    return "Only the visits with " + " and ".join(report["filters"])


def _nowrap(words: str) -> str:
    return f'<span style="white-space:nowrap;">{escape(words)}</span>'


def _change(moved: Change) -> str:
    colour = MUTED if moved.good is None else GOOD if moved.good else BAD
    return f'<span style="color:{colour};white-space:nowrap;">{escape(moved.text)}</span>'


def _cell(content: str, align: str = "right", header: bool = False) -> str:
    weight = f"font-weight:bold;color:{MUTED};font-size:12px;" if header else "font-size:14px;"
    wrap = "white-space:nowrap;" if align == "right" else ""  # on a phone, names wrap
    return (
        f'<td align="{align}" style="padding:6px 8px;border-bottom:1px solid {RULE};'
        f'{weight}{wrap}">{content}</td>'
    )


def _table(head: list[str], rows: list[list[str]]) -> str:
    """A table whose first column is text on the left and the others numbers on the right."""

    def line(cells: list[str], header: bool = False) -> str:
        aligned = [_cell(c, "left" if i == 0 else "right", header) for i, c in enumerate(cells)]
        return "<tr>" + "".join(aligned) + "</tr>"

    return (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="border-collapse:collapse;">'
        + line(head, header=True)
        + "".join(map(line, rows))
        + "</table>"
    )


def _overview(report: Mapping[str, Any]) -> str:
    tours = report["tours"]
    views = sum(t["totals"]["views"] for t in tours)
    before = sum(t["previous"]["views"] for t in tours)
    rows = [
        [escape(t["tour"]), f"{t['totals']['views']:,}", f"{t['previous']['views']:,}",
         _change(change(VIEWS, t["totals"]["views"], t["previous"]["views"]))]
        for t in tours
    ]  # fmt: skip
    return _block(
        f'<p style="margin:0 0 8px 0;font-size:16px;"><b>{views:,}</b> views of '
        f"{len(tours)} tour{'s' if len(tours) != 1 else ''} this week "
        f"{_change(change(VIEWS, views, before))} (week before: {before:,})</p>"
        + _table(["Tour", "Views", "Week before", "Change"], rows)
    )


def _section(detail: Mapping[str, Any]) -> str:
    current, previous = detail["current"], detail["previous"]
    lines = figure_lines(current["totals"], previous["totals"])
    figures = _table(
        ["", "This week", "Week before", "Change"],
        [[escape(ln.label), escape(ln.now), escape(ln.before), _change(ln.change)]
         for ln in lines],
    )  # fmt: skip
    parts = [
        f'<h2 style="margin:0 0 8px 0;padding-top:16px;border-top:2px solid {RULE};'
        f'font-size:18px;">{escape(detail["tour"])}</h2>',
        figures,
        _chart(current, previous),
        *_breakdowns(current),
    ]
    return _block("".join(parts), top=16)


def _bar(value: int, top: int, colour: str) -> str:
    height = max(2, round(value / top * BAR_HEIGHT)) if value else 1
    colour = colour if value else RULE  # a day without views: a thin grey line
    return (
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0"><tr>'
        f'<td width="12" height="{height}" bgcolor="{colour}" style="width:12px;'
        f'height:{height}px;background-color:{colour};font-size:0;line-height:0;">&nbsp;</td>'
        "</tr></table>"
    )


def _chart(current: Mapping[str, Any], previous: Mapping[str, Any]) -> str:
    """Views per day, this week's bar beside the week before's, the same weekday together.

    One table: bars, day names and values share its columns, so they line up.
    """
    now = [entry["views"] for entry in current["series"]]
    before = [entry["views"] for entry in previous["series"]]
    top = max([*now, *before, 1])
    days = [date.fromisoformat(current["from"]) + timedelta(days=i) for i in range(len(now))]
    bars, labels, values = [], [], []
    for day, this, last in zip(days, now, before, strict=True):
        said = f"{DAYS[day.weekday()]} {_day(day)}: {this:,} views (week before: {last:,})"
        bars.append(
            f'<td align="center" valign="bottom" height="{BAR_HEIGHT}" title="{escape(said)}" '
            f'style="height:{BAR_HEIGHT}px;vertical-align:bottom;padding:0 2px;'
            'border-bottom:1px solid #9ca3af;">'
            '<table role="presentation" cellpadding="0" cellspacing="0" border="0" '
            'align="center"><tr>'
            f'<td valign="bottom" style="vertical-align:bottom;padding:0 1px;">'
            f"{_bar(last, top, WEEK_BEFORE)}</td>"
            f'<td valign="bottom" style="vertical-align:bottom;padding:0 1px;">'
            f"{_bar(this, top, THIS_WEEK)}</td>"
            "</tr></table></td>"
        )
        labels.append(
            f'<td align="center" style="padding:4px 2px 0 2px;font-size:11px;color:{MUTED};">'
            f"{DAYS[day.weekday()]}<br>{day.day}</td>"
        )
        values.append(
            f'<td align="center" style="padding:2px;font-size:12px;font-weight:bold;">{this:,}</td>'
        )
    legend = (
        f'<p style="margin:12px 0 4px 0;font-size:12px;color:{MUTED};">Views per day: '
        f'<span style="color:{THIS_WEEK};">&#9632;</span> this week '
        f'<span style="color:{WEEK_BEFORE};">&#9632;</span> week before</p>'
    )
    return (
        legend
        + '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">'
        + "".join(f"<tr>{''.join(row)}</tr>" for row in (bars, labels, values))
        + "</table>"
    )


def _breakdowns(current: Mapping[str, Any]) -> list[str]:
    tables = []
    for title, measure, rows in _ranked(current):
        cells = [[escape(key), f"{amount:,}"] for key, amount in rows]
        tables.append(
            f'<p style="margin:16px 0 4px 0;font-size:14px;font-weight:bold;">'
            f"{escape(title)}</p>" + _table(["", measure], cells)
        )
    return tables


def _ranked(current: Mapping[str, Any]) -> list[tuple[str, str, list[tuple[str, int]]]]:
    """(title, measure, rows of key and amount) of each breakdown of the report the stats
    document has rows of; a breakdown's rows are ranked by its first column."""
    found = current.get("breakdown", {})
    shown = []
    for breakdown in reported():
        measure = breakdown.columns[0].field
        rows = [(str(row["key"]), row.get(measure, 0)) for row in found.get(breakdown.name) or []]
        if rows:
            shown.append((breakdown.report or breakdown.title, measure.capitalize(), rows))
    return shown


def _footer() -> str:
    return _block(
        f'<p style="margin:0 0 24px 0;padding-top:16px;border-top:1px solid {RULE};'
        f'font-size:12px;color:{MUTED};">Days are UTC days. Views and visitors are counted '
        "by tourviews without cookies or stored addresses; bots and repeats are left out. "
        "A visitor seen on several days is one visitor.</p>"
    )


# The plain-text part.


def text(report: Mapping[str, Any]) -> str:
    """The same report as plain text, for clients that show no HTML."""
    previous = report["previous"]
    tours = report["tours"]
    views = sum(t["totals"]["views"] for t in tours)
    before = sum(t["previous"]["views"] for t in tours)
    lines = [
        subject(report),
        f"{report['week']}, compared with {span(previous['from'], previous['to'])} (UTC days)",
        *([filtered(report)] if report.get("filters") else []),
        "",
        f"{views:,} views of {len(tours)} tour{'s' if len(tours) != 1 else ''} this week, "
        f"{change(VIEWS, views, before).text} (week before: {before:,})",
        "",
        *_columns(
            ["Tour", "Views", "Week before", "Change"],
            [
                [t["tour"], f"{t['totals']['views']:,}", f"{t['previous']['views']:,}",
                 change(VIEWS, t["totals"]["views"], t["previous"]["views"]).text]
                for t in tours
            ],
        ),
    ]  # fmt: skip
    for detail in report["details"]:
        lines += ["", "", detail["tour"], "=" * len(detail["tour"]), ""]
        lines += _text_section(detail["current"], detail["previous"])
    if len(report["details"]) < len(tours):
        lines += ["", _left(report)]
    return "\n".join(lines) + "\n"


def _columns(head: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Rows of text in columns: the first ``left`` to the left, the others to the right."""
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    return [
        "  ".join(
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [head, *rows]
    ]


def _text_section(current: Mapping[str, Any], previous: Mapping[str, Any]) -> list[str]:
    lines = _columns(
        ["", "This week", "Week before", "Change"],
        [[line.label, line.now, line.before, line.change.text]
         for line in figure_lines(current["totals"], previous["totals"])],
    )  # fmt: skip
    now = [entry["views"] for entry in current["series"]]
    before = [entry["views"] for entry in previous["series"]]
    top = max([*now, *before, 1])
    first = date.fromisoformat(current["from"])
    days = []
    for i, (this, last) in enumerate(zip(now, before, strict=True)):
        day = first + timedelta(days=i)
        bar = "█" * round(this / top * TEXT_BAR) or ("▏" if this else "")
        days.append([f"{DAYS[day.weekday()]} {_day(day)}", bar, f"{this:,}", f"{last:,}"])
    lines += ["", *_columns(["Views per day", "", "This week", "Week before"], days, left=2)]
    for title, measure, rows in _ranked(current):
        lines += ["", *_columns([title, measure], [[key, f"{n:,}"] for key, n in rows])]
    return lines
