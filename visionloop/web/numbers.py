"""How pages write the numbers people compare: one scale, percent (as Rekognition reports confidences),
whatever scale the value is stored in.

Confidences reach the pages on two scales: probabilities, thresholds and metrics (precision, recall, F1)
as fractions 0–1, and the confidences the APIs return as 0–100. Writing both as percent, with the
``percent`` template filter (registered in pages.py), keeps "97.4%" beside "threshold 97.5%" instead of
"97.4%" beside "0.975". Given the number it is compared with (``beside``), ``percent`` shows as many
digits as it takes for two different values never to read as equal (99.96% below a threshold of 99.97%),
and rounding never puts a value below its threshold on the other side of it."""

from __future__ import annotations

MAX_DIGITS = 4  # past 1/10,000 of a percent the two values are the same for anyone reading
NONE = "–"


def digits_apart(a: float, b: float, digits: int = 1, scale: float = 1.0) -> int:
    """The fewest decimals (at least ``digits``, at most MAX_DIGITS) at which the percents of ``a`` and
    ``b`` (both on 0–``scale``) read differently; ``digits`` when they are equal."""
    x, y = 100 * a / scale, 100 * b / scale
    while digits < MAX_DIGITS and x != y and f"{x:.{digits}f}" == f"{y:.{digits}f}":
        digits += 1
    return digits


def percent(value: float | None, digits: int = 1, *, scale: float = 1.0, beside: float | None = None) -> str:
    """``value`` (a fraction 0–1, or 0–100 with ``scale=100``) as a percent such as "97.4%"; "–" for
    None. With ``beside`` (the value it is shown next to, on the same scale) more digits when needed
    for the two to read differently; a value below ``beside`` is rounded down, so that it never reads
    as reaching it."""
    if value is None:
        return NONE
    if beside is not None:
        digits = digits_apart(value, beside, digits, scale)
    text = f"{100 * value / scale:.{digits}f}"
    if beside is not None and value < beside and text == f"{100 * beside / scale:.{digits}f}":
        text = f"{float(text) - 10.0**-digits:.{digits}f}"  # 49.99996 beside 50: "49.9999%", not "50.0000%"
    return f"{text}%"
