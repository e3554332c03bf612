"""The dashboard's chart of the last 24 hours, as plain SVG shapes computed
here and drawn by the template (no script, no chart library: four bar
series over 24 hours are a few rectangles, and the strict CSP stays)."""
from __future__ import annotations

import time
from dataclasses import dataclass

from ...services.traffic import KINDS, Hour

WIDTH, HEIGHT = 720, 180
LEFT, BOTTOM, TOP = 36, 22, 10


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    kind: str
    n: int
    hour: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[tuple[float, str]]     # x, hour label
    grid: list[tuple[float, int]]      # y, value
    base: float


def _nice(top: int) -> int:
    for step in (1, 2, 5):
        for mag in (1, 10, 100, 1000, 10000, 100000, 1000000):
            if step * mag * 4 >= top:
                return step * mag
    return max(1, top // 4)


def traffic_chart(hours: list[Hour]) -> Chart:
    peak = max([getattr(h, k) for h in hours for k in KINDS] + [1])
    step = _nice(peak)
    top = step * max(1, -(-peak // step))
    plot_h = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(1, len(hours))
    bw = (slot - 4) / len(KINDS)
    bars, ticks = [], []
    for i, h in enumerate(hours):
        x0 = LEFT + i * slot + 2
        label = time.strftime("%H:00", time.localtime(h.start))
        for j, k in enumerate(KINDS):
            n = getattr(h, k)
            bh = plot_h * n / top
            bars.append(Bar(round(x0 + j * bw, 1), round(TOP + plot_h - bh, 1),
                            round(bw - 0.5, 1), round(bh, 1), k, n, label))
        if i % 3 == 0:
            ticks.append((round(x0 + slot / 2 - 2, 1), label))
    grid = [(round(TOP + plot_h - plot_h * v / top, 1), v) for v in range(0, top + 1, step)]
    return Chart(WIDTH, HEIGHT, bars, ticks, grid, TOP + plot_h)
