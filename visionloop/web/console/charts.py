"""Charts drawn on the server as inline SVG (no chart library, no script): precision-recall curves per
label with each label's assumed threshold marked, the reliability (calibration) diagram and the drift
signal (how often reviewers agreed with the model, per day or week). Each function returns a complete
``<svg>`` element as Markup, well-formed XML with a <title> and role="img" so screen readers name it;
colours are SVG attributes, which the pages' Content-Security-Policy (style-src 'self') allows where
inline styles are not. Numbers on the axes are 0–1 ratios shown as percentages."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from markupsafe import Markup, escape

from visionloop.core.records.evaluation import ReliabilityBin
from visionloop.core.sampling import AgreementBucket
from visionloop.web.console.evaluation import CurvePoint, PrCurve
from visionloop.web.numbers import percent

PALETTE = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626")
INK = "#1f2933"
GRID = "#d9dee5"
MUTED = "#6b7785"
GAP = "#dc2626"
_ids = itertools.count(1)


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def heat(share: float) -> int:
    """A confusion-matrix cell's shade, 0 (none) to 10 (the whole row), for the CSS classes heat-0..10."""
    return max(0, min(10, round(share * 10)))


def _n(x: float) -> str:
    return str(round(x)) if abs(x - round(x)) < 1e-9 else f"{x:.1f}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _el(tag: str, content: str = "", /, **attrs: object) -> str:
    """An SVG element; attribute names use _ for -, floats are rounded, values and text are escaped
    (``content`` is markup: pass escape(text) for text)."""
    parts = []
    for name, value in attrs.items():
        shown = _n(value) if isinstance(value, float) else str(value)
        parts.append(f' {name.rstrip("_").replace("_", "-")}="{escape(shown)}"')
    inner = "".join(parts)
    return f"<{tag}{inner}>{content}</{tag}>" if content else f"<{tag}{inner}/>"


class _Plot:
    """A plot area mapping 0–1 × 0–1 onto pixels, with the SVG parts collected in drawing order."""

    def __init__(self, width: int, height: int, bottom: int = 38) -> None:
        self.width, self.height = width, height
        self.x0, self.x1 = 44.0, width - 18.0  # room for the "100%" under the right edge
        self.y0, self.y1 = height - float(bottom), 26.0  # y grows downwards
        self.parts: list[str] = []

    def x(self, v: float) -> float:
        return self.x0 + max(0.0, min(1.0, v)) * (self.x1 - self.x0)

    def y(self, v: float) -> float:
        return self.y0 - max(0.0, min(1.0, v)) * (self.y0 - self.y1)

    def add(self, part: str) -> None:
        self.parts.append(part)

    def text(
        self, x: float, y: float, text: str, anchor: str = "middle", size: int = 11, **attrs: object
    ) -> None:
        attrs.setdefault("fill", MUTED)
        self.add(_el("text", escape(text), x=x, y=y, text_anchor=anchor, font_size=size, **attrs))

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = GRID, **attrs: object) -> None:
        self.add(_el("line", x1=x1, y1=y1, x2=x2, y2=y2, stroke=stroke, stroke_width=1, **attrs))

    def axes(self, x_label: str, y_label: str) -> None:
        for v in (0.0, 0.25, 0.5, 0.75, 1.0):
            self.line(self.x(v), self.y0, self.x(v), self.y1)
            self.line(self.x0, self.y(v), self.x1, self.y(v))
            if v in (0.0, 0.5, 1.0):
                self.text(self.x(v), self.y0 + 14, _pct(v), size=10)
                self.text(self.x0 - 5, self.y(v) + 3.5, _pct(v), anchor="end", size=10)
        width, height = self.x1 - self.x0, self.y0 - self.y1
        self.add(_el("rect", x=self.x0, y=self.y1, width=width, height=height, fill="none", stroke=MUTED))
        self.text((self.x0 + self.x1) / 2, self.height - 6, x_label)
        cy = (self.y0 + self.y1) / 2
        self.text(12.0, cy, y_label, transform=f"rotate(-90 12 {_n(cy)})")

    def svg(self, title: str, description: str, css_class: str) -> Markup:
        ident = f"chart-{next(_ids)}"
        head = _el("title", escape(title), id=f"{ident}-t") + _el(
            "desc", escape(description), id=f"{ident}-d"
        )
        return Markup(
            _el(
                "svg",
                head + "".join(self.parts),
                xmlns="http://www.w3.org/2000/svg",
                class_=css_class,
                role="img",
                viewBox=f"0 0 {self.width} {self.height}",
                width=self.width,
                height=self.height,
                aria_labelledby=f"{ident}-t {ident}-d",
                font_family="system-ui, sans-serif",
            )
        )


def _step_path(plot: _Plot, points: Sequence[CurvePoint]) -> str:
    """The step curve whose area is the average precision: precision p_k over recall (r_{k-1}, r_k]."""
    if not points:
        return ""
    d = [f"M{_n(plot.x(0))} {_n(plot.y(points[0].precision))}"]
    for p in points:
        d.append(f"V{_n(plot.y(p.precision))}H{_n(plot.x(p.recall))}")
    return "".join(d)


def pr_chart(curve: PrCurve, index: int = 0, width: int = 250, height: int = 230) -> Markup:
    """One label's precision-recall curve, with its operating point (the assumed threshold) marked."""
    plot = _Plot(width, height)
    plot.axes("recall", "precision")
    ap = "–" if curve.average_precision is None else _pct(curve.average_precision)
    plot.text(plot.x0, 16, curve.label, anchor="start", size=12, fill=INK)
    plot.text(plot.x1, 16, f"AP {ap}", anchor="end")
    path = _step_path(plot, curve.points)
    if path:
        plot.add(_el("path", d=path, fill="none", stroke=colour(index), stroke_width=2))
    if curve.operating is not None:
        op = curve.operating
        _threshold_marker(plot, op)
        plot.add(
            _el(
                "circle",
                _el("title", escape(_operating_text(op))),
                class_="operating",
                cx=plot.x(op.recall),
                cy=plot.y(op.precision),
                r=4.5,
                fill="#fff",
                stroke=INK,
                stroke_width=2,
            )
        )
    basis = "every label's score" if curve.basis == "scores" else "each image's top label"
    description = (
        f"Precision against recall for {curve.label} over {len(curve.points)} cut-offs ({basis}); "
        f"{curve.positives} test images hold the label; average precision {ap}."
    )
    if curve.operating is not None:
        description += " The circle: " + _operating_text(curve.operating) + "."
    return plot.svg(f"Precision-recall curve: {curve.label}", description, "chart pr")


def _threshold_marker(plot: _Plot, op: CurvePoint) -> None:
    """Where the label's assumed threshold puts it, readable without hovering: dashed guides to both
    axes and the threshold written beside the point (on the side with room)."""
    x, y = plot.x(op.recall), plot.y(op.precision)
    plot.line(x, y, x, plot.y0, stroke=INK, stroke_dasharray="3 3", class_="threshold-guide")
    plot.line(plot.x0, y, x, y, stroke=INK, stroke_dasharray="3 3", class_="threshold-guide")
    left = op.recall > 0.5
    below = op.precision > 0.85  # near the top edge: write it under the point
    plot.text(
        x - 8 if left else x + 8,
        y + 16 if below else y - 8,
        f"threshold {percent(op.threshold)}",
        anchor="end" if left else "start",
        size=10,
        fill=INK,
        class_="threshold-text",
    )


def _operating_text(op: CurvePoint) -> str:
    return (
        f"at the assumed threshold {percent(op.threshold)}: "
        f"precision {_pct(op.precision)}, recall {_pct(op.recall)}"
    )


def reliability_chart(
    bins: Sequence[ReliabilityBin], ece: float | None, width: int = 380, height: int = 300
) -> Markup:
    """The reliability diagram: per confidence bin, the share of right answers (bar) against the mean
    confidence (the diagonal is perfect calibration; a red band marks the gap)."""
    plot = _Plot(width, height, bottom=52)
    plot.axes("confidence", "share right")
    plot.line(plot.x(0), plot.y(0), plot.x(1), plot.y(1), stroke=MUTED, stroke_dasharray="4 3")
    total = sum(b.count for b in bins) or 1
    for b in bins:
        if not b.count or b.accuracy is None or b.mean_confidence is None:
            continue
        x, w = plot.x(b.lower) + 1, max(1.0, plot.x(b.upper) - plot.x(b.lower) - 2)
        tip = (
            f"confidence {_pct(b.lower)}–{_pct(b.upper)}: {b.count} predictions, mean confidence "
            f"{_pct(b.mean_confidence)}, right {_pct(b.accuracy)}"
        )
        parts = [
            _el("title", escape(tip)),
            _el(
                "rect",
                x=x,
                y=plot.y(b.accuracy),
                width=w,
                height=plot.y0 - plot.y(b.accuracy),
                fill=PALETTE[0],
                fill_opacity=0.75,
            ),
        ]
        top, bottom = max(b.accuracy, b.mean_confidence), min(b.accuracy, b.mean_confidence)
        if top - bottom > 1e-9:
            parts.append(
                _el(
                    "rect",
                    x=x,
                    y=plot.y(top),
                    width=w,
                    height=plot.y(bottom) - plot.y(top),
                    fill=GAP,
                    fill_opacity=0.25,
                    stroke=GAP,
                )
            )
        share = b.count / total  # a strip under the axis: where the predictions are
        parts.append(_el("rect", x=x, y=plot.y0 + 20, width=w, height=max(1.0, 10 * share**0.5), fill=MUTED))
        plot.add(_el("g", "".join(parts), class_="bin"))
    label = "expected calibration error " + ("–" if ece is None else f"{100 * ece:.1f} points")
    plot.text(plot.x0, 16, label, anchor="start", fill=INK)
    description = (
        "Bars: the share of right answers among the test predictions in each confidence bin; the dashed "
        "diagonal is perfect calibration; red bands mark the gap; grey ticks show how many predictions "
        f"fall in each bin. {label.capitalize()}."
    )
    return plot.svg("Reliability diagram", description, "chart reliability")


FEW_LOOPS = 5  # a day or week with fewer completed loops is drawn hollow: its rate can swing a lot


def agreement_chart(buckets: Sequence[AgreementBucket], bucket: str = "day", width: int = 560) -> Markup:
    """The drift signal as a line: the share of completed human loops whose answer agreed with the
    model, per day or week (oldest left). A point of fewer than FEW_LOOPS loops is hollow; each point's
    title gives its date, rate and loops."""
    plot = _Plot(width, 220, bottom=40)
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        plot.line(plot.x0, plot.y(v), plot.x1, plot.y(v))
        if v in (0.0, 0.5, 1.0):
            plot.text(plot.x0 - 5, plot.y(v) + 3.5, _pct(v), anchor="end", size=10)
    plot.add(
        _el(
            "rect",
            x=plot.x0,
            y=plot.y1,
            width=plot.x1 - plot.x0,
            height=plot.y0 - plot.y1,
            fill="none",
            stroke=MUTED,
        )
    )
    shown = [b for b in buckets if b.rate is not None]
    places = [0.5] if len(shown) == 1 else [i / max(1, len(shown) - 1) for i in range(len(shown))]
    points = [(plot.x(at), plot.y(b.rate or 0.0), b) for at, b in zip(places, shown, strict=True)]
    if len(points) > 1:
        d = "M" + "L".join(f"{_n(x)} {_n(y)}" for x, y, _ in points)
        plot.add(_el("path", d=d, fill="none", stroke=PALETTE[0], stroke_width=2))
    for x, y, b in points:
        few = b.loops < FEW_LOOPS
        tip = (
            f"{b.start:%Y-%m-%d}: {percent(b.rate, 0)} of {b.loops} loop{'s' if b.loops != 1 else ''} agreed"
        )
        plot.add(
            _el(
                "circle",
                _el("title", escape(tip)),
                class_="few" if few else "point",
                cx=x,
                cy=y,
                r=4.0,
                fill="#fff" if few else PALETTE[0],
                stroke=PALETTE[0],
                stroke_width=2,
            )
        )
    labelled = {0, len(points) - 1, (len(points) - 1) // 2} if points else set()
    for i in sorted(labelled):
        x, _, b = points[i]
        anchor = (
            "start" if i == 0 and len(points) > 1 else ("end" if i == len(points) - 1 and i else "middle")
        )
        plot.text(x, plot.y0 + 14, f"{b.start:%b %d}", anchor=anchor, size=10)
    plot.text((plot.x0 + plot.x1) / 2, plot.height - 6, f"per {bucket} (UTC)")
    cy = (plot.y0 + plot.y1) / 2
    plot.text(12.0, cy, "agreed", transform=f"rotate(-90 12 {_n(cy)})")
    plot.text(plot.x0, 16, "reviewers who agreed with the model", anchor="start", size=12, fill=INK)
    if shown:
        first, last = shown[0], shown[-1]
        description = (
            f"{len(shown)} {bucket}s from {first.start:%Y-%m-%d} to {last.start:%Y-%m-%d}: agreement "
            f"went from {percent(first.rate, 0)} to {percent(last.rate, 0)}. Hollow points: fewer than "
            f"{FEW_LOOPS} loops."
        )
    else:
        description = "No completed human loop yet."
    return plot.svg("Agreement with reviewers over time", description, "chart agreement")
