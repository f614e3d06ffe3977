"""A factory's history as a small chart: the number of non-compliant public-reporting issues at
each assessment, against the threshold — bars for emails, a sparkline for Slack and the console.

Pure, and without words: dates, counts, whether each assessment counted (and why not) and the
threshold go in; the bars, their cells and the sparkline come out. The words, which say all the
picture shows, are in the templates (``templates/email/chart.html``, ``templates/text/chart.txt``).
A notice keeps the chart's data in its payload (``frozen``), threshold included, so a retry
months later, after the rules changed, shows what was true when the event happened.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple, Protocol

from bot.policy import EventKind, Verdict

#: the assessments a chart shows, the latest ones
SHOWN = 8
#: the email bars' track, in pixels: the widest bar
TRACK = 240
#: the threshold's mark in the email bars, in pixels
MARK = 2
#: the text emails' bars, in characters: the longest bar
COLUMNS = 20
#: the sparkline's levels, lowest first (a count of 0 is the lowest, any other count higher)
LEVELS = "▁▂▃▄▅▆▇█"
#: the sparkline's sign for an assessment that did not count
NOT_COUNTED = "·"
#: the text bars' cells: a counted bar, a bar not counted, the empty track, the threshold
FULL, FADED, EMPTY, RULE = "█", "▒", "░", "│"
#: the events whose notices show the chart (``EventKind`` values)
CHARTED = frozenset(
    {
        EventKind.AT_RISK_WARNING,
        EventKind.PROCESS_STOPPED,
        EventKind.PNC_DESIGNATED,
        EventKind.READMISSION_APPROVED,
        EventKind.READMISSION_REJECTED,
    }
)


class Point(NamedTuple):
    """One assessment: its date, its count, and why it did not count (None if it did): a
    ``policy.NotCounted`` value, or for a kind that is not counted, the kind (``advisory``)."""

    assessed_on: date
    nc_count: int
    why: str | None = None


class Assessed(Protocol):
    """An assessment as the status shows it (``read_models.AssessmentLine``)."""

    @property
    def assessed_on(self) -> date: ...
    @property
    def nc_count(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def not_counted(self) -> str | None: ...


def why_of(not_counted: str | None, kind: str) -> str | None:
    """A ``Point``'s ``why`` from a verdict's reason and the assessment's kind."""
    if not_counted is None:
        return None
    return kind if not_counted == "kind_not_counted" else str(not_counted)


class Segment(NamedTuple):
    """A cell of an email bar: its width in pixels and what it is (``bar``, ``mark`` for the
    threshold, ``track`` for the rest)."""

    width: int
    what: str


@dataclass(frozen=True)
class Bar:
    """One assessment of a chart."""

    assessed_on: date
    count: int
    why: str | None
    #: counted, and at or over the threshold
    fails: bool
    #: the bar's width in pixels (0 for a count of 0)
    width: int
    #: its cells, left to right; their widths add up to ``TRACK``
    segments: tuple[Segment, ...]
    #: its character in the sparkline
    spark: str
    #: its bar in a text email, ``COLUMNS`` characters and the threshold's rule
    text: str

    @property
    def counted(self) -> bool:
        return self.why is None

    @property
    def state(self) -> str:
        """``fails``, ``passes`` or ``not_counted``: its colour and its word."""
        return "fails" if self.fails else "passes" if self.counted else "not_counted"


@dataclass(frozen=True)
class Chart:
    """The latest assessments (oldest first) against the threshold; ``left_out`` earlier ones
    are not shown. ``scale`` is the count the whole track stands for."""

    bars: tuple[Bar, ...]
    threshold: int
    left_out: int
    scale: int

    @property
    def sparkline(self) -> str:
        return "".join(b.spark for b in self.bars)

    @property
    def track(self) -> int:
        return TRACK

    @property
    def mark_at(self) -> int:
        """Where the threshold's mark ends on the track, in pixels."""
        return _mark(self.threshold, self.scale)

    @property
    def any_not_counted(self) -> bool:
        return any(not b.counted for b in self.bars)

    def __bool__(self) -> bool:
        return bool(self.bars)


def chart(
    points: Iterable[Point], threshold: int, *, left_out: int = 0, shown: int = SHOWN
) -> Chart:
    """The chart of ``points`` (oldest first): the last ``shown`` of them, and how many earlier
    ones are left out (``left_out`` adds those the caller already left out)."""
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    every = list(points)
    kept = every[-shown:] if shown > 0 else []
    # room above the threshold, so that its mark never sits at the end of the track
    scale = max([threshold + 1, *(p.nc_count for p in kept)])
    bars = tuple(_bar(p, threshold, scale) for p in kept)
    return Chart(bars, threshold, left_out + len(every) - len(kept), scale)


def of_assessments(assessments: Sequence[Assessed], threshold: int) -> Chart:
    """The chart of a factory's assessments (oldest first), as its status shows them."""
    return chart(
        (Point(a.assessed_on, a.nc_count, why_of(a.not_counted, a.kind)) for a in assessments),
        threshold,
    )


def _bar(p: Point, threshold: int, scale: int) -> Bar:
    count = max(p.nc_count, 0)
    mark = _mark(threshold, scale)
    # the text bar's column just after the threshold
    rule = min(max(round(threshold * COLUMNS / scale), 1), COLUMNS - 1)
    # a count at or over the threshold always reaches its mark, one under it never does
    if count >= threshold:
        width, columns = max(_px(count, scale), mark), max(round(count * COLUMNS / scale), rule)
    elif count:
        width = min(max(_px(count, scale), 3), mark - MARK)
        columns = min(max(round(count * COLUMNS / scale), 1), rule - 1)
    else:
        width, columns = 0, 0
    if p.why is not None:
        spark = NOT_COUNTED
    elif count == 0:
        spark = LEVELS[0]
    else:  # a count of 1 is never drawn as 0: levels 1 to 7, rounded up
        spark = LEVELS[min(-(-count * (len(LEVELS) - 1) // scale), len(LEVELS) - 1)]
    cells = [FULL if p.why is None else FADED] * columns + [EMPTY] * (COLUMNS - columns)
    if rule >= columns:
        cells[rule] = RULE
    return Bar(
        p.assessed_on,
        count,
        p.why,
        p.why is None and count >= threshold,
        width,
        _segments(width, mark),
        spark,
        "".join(cells),
    )


def _px(count: int, scale: int) -> int:
    return round(count * TRACK / scale)


def _mark(threshold: int, scale: int) -> int:
    """Where the threshold's mark ends, in pixels: always whole on the track."""
    return min(max(_px(threshold, scale), MARK), TRACK)


def _segments(width: int, mark: int) -> tuple[Segment, ...]:
    """A bar's cells: the bar up to ``width``, the threshold's mark just before ``mark`` (over
    the bar where the bar reaches it), the empty track after; no cell is 0 pixels wide."""
    edges = sorted({0, width, mark - MARK, mark, TRACK})
    cells: list[Segment] = []
    for start, end in itertools.pairwise(edges):
        what = "mark" if mark - MARK <= start < mark else "bar" if start < width else "track"
        if cells and cells[-1].what == what:
            cells[-1] = Segment(cells[-1].width + end - start, what)
        else:
            cells.append(Segment(end - start, what))
    return tuple(cells)


# --- in a notice's payload --------------------------------------------------------------------


def frozen(points: Sequence[Point], threshold: int, left_out: int = 0) -> dict[str, Any]:
    """The chart's data as a notice's payload keeps it (JSON, small): the threshold, the last
    ``SHOWN`` points as ``[date, count]``, or ``[date, count, why]`` for one that did not count,
    and how many earlier ones are left out (``left_out`` adds those the caller left out)."""
    kept = points[-SHOWN:]
    return {
        "threshold": threshold,
        "points": [
            [p.assessed_on.isoformat(), p.nc_count, p.why]
            if p.why is not None
            else [p.assessed_on.isoformat(), p.nc_count]
            for p in kept
        ],
        "left_out": left_out + len(points) - len(kept),
    }


def thawed(data: Mapping[str, Any]) -> Chart:
    """The chart of data ``frozen`` in a payload."""
    points = [
        Point(date.fromisoformat(p[0]), int(p[1]), p[2] if len(p) > 2 else None)
        for p in data.get("points") or ()
    ]
    return chart(points, int(data["threshold"]), left_out=int(data.get("left_out") or 0))


def frozen_until(
    verdicts: Sequence[Verdict], threshold: int, assessment_id: int | None, on: date
) -> dict[str, Any]:
    """``frozen`` of a factory's verdicts (oldest first) up to an event: up to and including its
    assessment, or, for an event of no assessment (a readmission decision), those of assessments
    on or before its day ``on``."""
    end = next(
        (i + 1 for i, v in enumerate(verdicts) if v.assessment.id == assessment_id),
        None,
    )
    if end is None:
        end = sum(1 for v in verdicts if v.assessment.assessed_on <= on)
    start = max(end - SHOWN, 0)
    return frozen(
        [
            Point(v.assessment.assessed_on, v.nc_count, why_of(v.not_counted, v.assessment.kind))
            for v in verdicts[start:end]
        ],
        threshold,
        start,
    )
