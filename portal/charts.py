"""Bar charts drawn on the server: counts per day laid out as stacked bars in SVG viewBox units,
for ``templates/includes/day_chart.html``. No script and no charting library; the template also
lists the numbers as a table, the chart's text alternative."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

# The chart shows at most this many days (the most recent ones).
MAX_DAYS = 92
# Vertical layout, in viewBox units: room for the value labels on the left and the dates below.
_PLOT_TOP = 8.0
_PLOT_BOTTOM = 128.0
_PLOT_LEFT = 34.0
_CHART_HEIGHT = 150.0
_LABEL_WIDTH = 40.0  # a date label ("03-14") needs about this many units
_RIGHT_PAD = 12.0  # room for half the last day's label when its bar is narrow
_MAX_GRID_STEPS = 4


@dataclass(frozen=True)
class Series:
    """One kind of thing counted: ``key`` names it in the counts and in the CSS
    (``chart__bar--<key>``, ``legend--<key>``); ``label`` is what people read."""

    key: str
    label: str


@dataclass(frozen=True)
class Bar:
    kind: str
    count: int
    x: float
    y: float
    width: float
    height: float
    label: str = ""
    url: str = ""


@dataclass(frozen=True)
class ChartDay:
    day: date
    counts: dict[str, int]
    bars: list[Bar]
    label: str
    label_x: float
    urls: dict[str, str] = field(default_factory=dict)
    series: tuple[Series, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def cells(self) -> list[tuple[Series, int, str]]:
        """(series, count, link to the list behind it) in series order, for the table."""
        return [(s, self.counts[s.key], self.urls.get(s.key, "")) for s in self.series]


@dataclass(frozen=True)
class DayChart:
    """Counts per day as stacked bars. ``peak`` is the top of the value axis (a round number at
    or above the busiest day); ``marker_x`` places an optional vertical line (a deadline)."""

    days: list[ChartDay]
    series: tuple[Series, ...]
    peak: int
    width: float
    height: float
    plot_top: float
    plot_bottom: float
    plot_left: float
    truncated: bool
    step: float
    bar_width: float
    marker_x: float | None = None
    marker_label: str = ""

    @property
    def empty(self) -> bool:
        return not any(day.total for day in self.days)

    @property
    def busiest(self) -> int:
        return max((day.total for day in self.days), default=0)

    @property
    def total(self) -> int:
        return sum(day.total for day in self.days)

    @property
    def totals(self) -> list[tuple[Series, int]]:
        return [(s, sum(day.counts[s.key] for day in self.days)) for s in self.series]

    @property
    def axis_x(self) -> float:
        return self.plot_left - 6

    @property
    def grid(self) -> list[tuple[int, float]]:
        """(value, y) of the horizontal grid lines, evenly spaced from 0 to the peak."""
        span = self.plot_bottom - self.plot_top
        unit = grid_step(self.peak)
        return [
            (value, round(self.plot_bottom - span * value / self.peak, 2))
            for value in range(0, self.peak + 1, unit)
        ]

    def x_at(self, days_after_first: float) -> float:
        """The x of a moment ``days_after_first`` days after the first day's start."""
        gap = self.step - self.bar_width
        return round(self.plot_left + 6 + days_after_first * self.step - gap / 2, 2)


def grid_step(peak: int) -> int:
    """The distance between grid lines: 1, 2 or 5 times a power of ten, at most four steps."""
    if peak <= _MAX_GRID_STEPS:
        return 1
    magnitude = 10 ** math.floor(math.log10(peak / _MAX_GRID_STEPS))
    for factor in (1, 2, 5, 10):
        if factor * magnitude * _MAX_GRID_STEPS >= peak:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def nice_peak(busiest: int) -> int:
    """The top of the value axis: the busiest day rounded up to a whole grid step (at least 1)."""
    busiest = max(busiest, 1)
    unit = grid_step(busiest)
    return unit * math.ceil(busiest / unit)


def day_chart(
    counts: Mapping[date, Mapping[str, int]],
    *,
    series: Sequence[Series],
    first: date,
    last: date,
    max_days: int = MAX_DAYS,
    plot_width: float = 640.0,
    min_step: float = 0.0,
    max_step: float = 40.0,
    link: Callable[[date, str], str] | None = None,
) -> DayChart:
    """Lay out ``counts`` (day -> series key -> count) from ``first`` to ``last``, the last
    ``max_days`` days at most. Each day gets ``plot_width / days`` units, kept between
    ``min_step`` and ``max_step``; ``link(day, key)``, if given, is the list behind a number."""
    start = max(first, last - timedelta(days=max_days - 1))
    span = (last - start).days + 1
    shown = [
        sum(int(c.get(s.key, 0)) for s in series) for d, c in counts.items() if start <= d <= last
    ]
    peak = nice_peak(max(shown, default=0))
    scale = (_PLOT_BOTTOM - _PLOT_TOP) / peak
    step = round(min(max_step, max(min_step, plot_width / span)), 2)
    bar_width = round(step * 0.7, 2)
    label_every = max(1, math.ceil(_LABEL_WIDTH / step))
    days = []
    for index in range(span):
        day = start + timedelta(days=index)
        day_counts = {s.key: int(counts.get(day, {}).get(s.key, 0)) for s in series}
        urls = {s.key: link(day, s.key) for s in series if day_counts[s.key]} if link else {}
        x = round(_PLOT_LEFT + 6 + index * step, 2)
        bars = []
        y = _PLOT_BOTTOM
        for s in series:
            value = day_counts[s.key]
            if not value:
                continue
            height = value * scale
            y -= height
            bars.append(
                Bar(
                    s.key,
                    value,
                    x,
                    round(y, 2),
                    bar_width,
                    round(height, 2),
                    s.label,
                    urls.get(s.key, ""),
                )
            )
        # Labels count back from the last day, so today always has its date.
        label = f"{day:%m-%d}" if (span - 1 - index) % label_every == 0 else ""
        days.append(
            ChartDay(
                day,
                day_counts,
                bars,
                label,
                round(x + bar_width / 2, 2),
                urls,
                tuple(series),
            )
        )
    return DayChart(
        days=days,
        series=tuple(series),
        peak=peak,
        width=round(_PLOT_LEFT + 12 + span * step + _RIGHT_PAD, 2),
        height=_CHART_HEIGHT,
        plot_top=_PLOT_TOP,
        plot_bottom=_PLOT_BOTTOM,
        plot_left=_PLOT_LEFT,
        truncated=start > first,
        step=step,
        bar_width=bar_width,
    )
