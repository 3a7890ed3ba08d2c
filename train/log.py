"""Training logs: a CSV row every few steps, a loss-curve PNG redrawn from it, and periodic sample grids.

The CSV is the record; the PNG is drawn from the CSV (PIL only, no plotting library) so both always agree. On resume
the rows after the resumed step are dropped: the interrupted run may have logged steps that the resumed one repeats.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path


class CsvLog:
    def __init__(self, path, fields: list[str], resume_step: int | None = None):
        self.path, self.fields = Path(path), fields
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if resume_step is not None and self.path.is_file():
            with self.path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)

    def write(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields).writerow({k: row.get(k, "") for k in self.fields})

    def rows(self) -> list[dict]:
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))


COLORS = [(30, 90, 200), (220, 90, 30), (40, 150, 60), (150, 60, 170)]


def plot_curve(points: list[tuple[float, float]], path, title: str = "loss", size=(640, 360), log_y: bool = True):
    """A line plot of (x, y) points with axis ticks, saved as PNG. Log y makes the slow tail of a loss readable."""
    plot_curves({"": points}, path, title, size, log_y)


def plot_curves(series: dict[str, list[tuple[float, float]]], path, title: str = "", size=(640, 360),
                log_y: bool = False, y_range: tuple[float, float] | None = None):
    """Several named lines on shared axes (a legend when they have names), saved as PNG."""
    from PIL import Image, ImageDraw

    W, H = size
    left, right, top, bottom = 60, 15, 25, 35
    im = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(im)
    d.text((left, 6), title, fill="black")
    series = {k: [(x, y) for x, y in v if y == y and (y > 0 or not log_y)] for k, v in series.items()}
    pts = [p for v in series.values() for p in v]
    if len(pts) < 2:
        im.save(path)
        return
    f = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    xs, ys = [p[0] for p in pts], [f(p[1]) for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range if y_range else (min(ys), max(ys))
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    x1 = x1 if x1 > x0 else x0 + 1

    def px(x, y):
        return left + (x - x0) / (x1 - x0) * (W - left - right), top + (y1 - y) / (y1 - y0) * (H - top - bottom)

    d.rectangle((left, top, W - right, H - bottom), outline="black")
    for k in range(5):
        yv = y0 + (y1 - y0) * k / 4
        _, yy = px(x0, yv)
        d.line((left - 4, yy, left, yy), fill="black")
        d.text((4, yy - 6), f"{10 ** yv if log_y else yv:.3g}", fill="black")
        xv = x0 + (x1 - x0) * k / 4
        xx, _ = px(xv, y0)
        d.line((xx, H - bottom, xx, H - bottom + 4), fill="black")
        d.text((xx - 10, H - bottom + 8), f"{xv:.0f}", fill="black")
    for i, (name, v) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        line = [px(x, f(y)) for x, y in v]
        if len(line) > 1:
            d.line(line, fill=color, width=2)
        for x, y in line:
            d.ellipse((x - 2, y - 2, x + 2, y + 2), fill=color)
        if name:
            d.text((left + 8, top + 6 + 14 * i), name, fill=color)
    im.save(path)
