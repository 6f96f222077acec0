"""DetectText: PP-OCRv4 (the ONNX models shipped in ``rapidocr-onnxruntime``) read into Rekognition's
LINE and WORD detections.

The pipeline uses rapidocr's detector (DB text boxes), its angle classifier and its recogniser's
ONNX session, but does the cropping, the orientation decisions and the CTC decoding itself, because
Rekognition wants words and rapidocr only gives lines (these are rapidocr 1.4.4's attributes
``text_det``, ``text_cls`` and ``text_rec``; the package is pinned):

- **Words.** The recogniser is a CTC model: each output column is a slice of the line crop. A word
  boundary is where the model emitted a space, or where it gave the space class a probability of at
  least ``SPACE_PROBABILITY`` somewhere between two characters (PP-OCRv4 often drops spaces that it
  clearly "sees": ``Cleanhandswithsoap`` has P(space) 0.2–0.3 in each gap and < 0.01 inside words).
  A word's geometry is the slice of its line's quadrilateral between the columns of its first and
  last characters, so words follow rotated and slanted lines. Between two Chinese characters or kana
  only an emitted space splits (those scripts are written without spaces).
- **Rotation.** When the vertical text boxes of an image outweigh the horizontal ones, the picture
  lies on its side: it is turned by 90° and detected again, so that lines and short words are found
  as they were written (costs one more detection pass, for those pictures only). A crop still 1.5 times
  taller than wide (a column of text) is turned by 90° before reading. Then the angle classifier turns each
  line it is sure of by 180° or not; the lines it is unsure of follow the vote of all lines,
  weighted by their length (an upside-down picture's lines are then listed in reverse).
- **Geometry** is returned in ratios of the image as decoded (EXIF orientation applied), with each
  polygon in reading order (top-left, top-right, bottom-right, bottom-left of the text).

Filters follow DetectText's: WordFilter drops words under a confidence or with a bounding box
smaller than a height/width ratio, RegionsOfInterest keeps a word that lies more than half inside a
region; a line keeps the words that pass, its text and geometry rebuilt from them, and disappears
when none does. At most ``MAX_WORDS`` words are returned (in reading order), as Rekognition does.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from visionloop.core.records.analysis import BoundingBox, Point, TextDetection
from visionloop.engines.preprocess import decode_image
from visionloop.errors import InvalidInput, Unavailable

MAX_WORDS = 100  # DetectText returns up to 100 words
MIN_LINE_SCORE = 0.5  # rapidocr's own floor (text_score): below it a "line" is almost always noise
SPACE_PROBABILITY = 0.1  # P(space) between two characters that makes a word boundary
MAX_SIDE = 2000  # rapidocr's max_side_len: larger images are reduced before detection
MIN_SIDE = 30  # rapidocr's min_side_len
VERTICAL = 1.5  # a crop this much taller than wide is turned by 90° (rapidocr's rule)
ANGLE_CONFIDENT = 0.9  # rapidocr's cls_thresh: the classifier decides a line's 180° on its own above it
_REC_HEIGHT, _REC_MIN_WIDTH = 48, 320  # the recogniser's input height and minimum (padded) width
_DEFAULT_PITCH = 3.0  # character pitch in CTC columns when a line has no two adjacent characters

Region = BoundingBox | Sequence[Point]


def _package_version() -> str:
    try:
        return importlib.metadata.version("rapidocr-onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@dataclass
class _Word:
    text: str
    confidence: float  # 0-100
    start: float  # fractions of the line's length, in reading order
    end: float


@dataclass
class _Line:
    corners: np.ndarray  # 4x2 ratios of the image: top-left, top-right, bottom-right, bottom-left
    words: list[_Word]

    def polygon(self, start: float = 0.0, end: float = 1.0) -> tuple[Point, ...]:
        tl, tr, br, bl = self.corners
        points = (
            tl + start * (tr - tl),
            tl + end * (tr - tl),
            bl + end * (br - bl),
            bl + start * (br - bl),
        )
        return tuple(Point(float(np.clip(x, 0, 1)), float(np.clip(y, 0, 1))) for x, y in points)


class TextAnalyser:
    """Reads text (DetectText). The models load on first use, once per instance; ``detect`` may be
    called from several threads (one image is read at a time, on ``num_threads`` cores)."""

    kind = "text"

    def __init__(self, num_threads: int | None = None) -> None:
        if num_threads is not None and num_threads < 1:
            raise InvalidInput(f"num_threads must be at least 1, not {num_threads}")
        self.num_threads = num_threads
        self.version = (
            f"visionloop-text-1.0 (PP-OCRv4 det+cls+rec, rapidocr-onnxruntime {_package_version()})"
        )
        self._engine: Any = None
        self._space = -1
        self._charset: list[str] = []
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the models and read one small image (the first inference is several times slower)."""
        probe = Image.new("RGB", (160, 48), "white")
        self._read(np.asarray(probe))

    def detect(
        self,
        image: bytes,
        *,
        min_confidence: float = 0,
        min_box_height: float = 0,
        min_box_width: float = 0,
        regions: Sequence[Region] | None = None,
    ) -> list[TextDetection]:
        """LINE detections (ids 0..n-1, reading order), then WORD detections whose ``parent_id`` is
        their line's id. ``min_confidence`` is 0–100; ``min_box_height``/``min_box_width`` are
        ratios of the image; ``regions`` are boxes or polygons in ratios (RegionsOfInterest)."""
        for name, value, top in (
            ("min_confidence", min_confidence, 100.0),
            ("min_box_height", min_box_height, 1.0),
            ("min_box_width", min_box_width, 1.0),
        ):
            if not 0 <= value <= top:
                raise InvalidInput(f"{name} must be between 0 and {top:g}, not {value}")
        picture = decode_image(image)
        lines = self._read(np.asarray(_fit(picture)))
        return _assemble(lines, min_confidence, min_box_height, min_box_width, regions)

    # -- the model ---------------------------------------------------------------------------

    def _load(self) -> Any:
        with self._lock:
            if self._engine is None:
                try:
                    from rapidocr_onnxruntime import RapidOCR
                except ImportError as exc:
                    raise Unavailable(
                        "text detection needs rapidocr-onnxruntime: install visionloop's 'analysis' extra"
                    ) from exc
                threads = min(self.num_threads or os.cpu_count() or 1, os.cpu_count() or 1)
                engine = RapidOCR(
                    det_limit_type="max",
                    det_limit_side_len=960,
                    intra_op_num_threads=threads,
                    inter_op_num_threads=1,
                )
                self._charset = list(engine.text_rec.postprocess_op.character)
                self._space = self._charset.index(" ")
                self._engine = engine
            return self._engine

    def _read(self, rgb: np.ndarray) -> list[_Line]:
        """Lines and words of an RGB image, geometry in ratios of its size, in reading order."""
        self._load()
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        with self._lock:
            boxes = self._boxes(bgr)
            turned = _sideways(boxes)
            if turned:  # the picture lies on its side: detect again on it turned upright (or upside down)
                bgr = np.ascontiguousarray(np.rot90(bgr))  # counter-clockwise
                boxes = self._boxes(bgr)
            if len(boxes) == 0:
                return []
            crops, corners = _crops(bgr, boxes)
            crops, corners, flipped = self._upright(crops, corners)
            words = self._recognise(crops)
        size = np.array([bgr.shape[1], bgr.shape[0]], dtype=np.float32)
        lines = [_Line(quad / size, w) for quad, w in zip(corners, words, strict=True) if w is not None]
        if flipped:  # most lines were upside down: the image's reading order is the reverse
            lines.reverse()
        if turned:  # back from the counter-clockwise turn: (x, y) there is (1 - y, x) here
            for line in lines:
                line.corners = np.stack([1 - line.corners[:, 1], line.corners[:, 0]], axis=1)
        return lines

    def _boxes(self, bgr: np.ndarray) -> np.ndarray:
        """Text quadrilaterals (clockwise from top-left, pixels), in reading order."""
        height, width = bgr.shape[:2]
        padded, pad = _letterbox(bgr)
        boxes, _ = self._engine.text_det(padded)
        if boxes is None or len(boxes) == 0:
            return np.zeros((0, 4, 2), dtype=np.float32)
        boxes = np.asarray(boxes, dtype=np.float32) - np.array([0, pad], dtype=np.float32)
        return _reading_order(np.clip(boxes, 0, [width, height]))

    def _upright(
        self, crops: list[np.ndarray], corners: list[np.ndarray]
    ) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
        """Turn upside-down crops by 180° with the angle classifier: a line it is sure about
        (``ANGLE_CONFIDENT``) decides alone, the others follow the vote of all lines weighted by
        their length. Also says whether the vote found the image upside down."""
        cls = self._engine.text_cls
        batch = np.stack([cls.resize_norm_img(crop) for crop in crops]).astype(np.float32)
        probs = np.concatenate([cls.infer(batch[i : i + 16])[0] for i in range(0, len(batch), 16)])
        flipped = probs[:, 1]  # label list ['0', '180']
        vote = sum(_length(c) * (1 if f > 0.5 else -1) for c, f in zip(crops, flipped, strict=True))
        out_crops, out_corners = [], []
        for crop, quad, f in zip(crops, corners, flipped, strict=True):
            sure = max(f, 1 - f) > ANGLE_CONFIDENT
            if (f > 0.5) if sure else (vote > 0):
                crop = np.ascontiguousarray(crop[::-1, ::-1])
                quad = quad[[2, 3, 0, 1]]
            out_crops.append(crop)
            out_corners.append(quad)
        return out_crops, out_corners, vote > 0

    def _recognise(self, crops: list[np.ndarray]) -> list[list[_Word] | None]:
        """Words of each upright line crop (None where nothing legible is there).

        One crop per run: batching pads every crop to the longest of its batch, which measured
        slower here than the extra runs, and would make a line's reading depend on its neighbours."""
        rec = self._engine.text_rec
        out: list[list[_Word] | None] = []
        for crop in crops:
            h, w = crop.shape[:2]
            ratio = max(_REC_MIN_WIDTH / _REC_HEIGHT, w / h)
            norm = rec.resize_norm_img(crop, ratio)[np.newaxis].astype(np.float32)
            probs = rec.session(norm)[0][0]  # columns x classes
            content = min(math.ceil(_REC_HEIGHT * w / h), norm.shape[3])  # pixels before padding
            out.append(_decode(probs, self._charset, self._space, content * probs.shape[0] / norm.shape[3]))
        return out


# -- image handling ----------------------------------------------------------------------------


def _fit(image: Image.Image) -> Image.Image:
    """Bring the image within rapidocr's side limits (ratios do not change)."""
    long_side, short_side = max(image.size), min(image.size)
    scale = 1.0
    if long_side > MAX_SIDE:
        scale = MAX_SIDE / long_side
    elif short_side < MIN_SIDE:
        scale = MIN_SIDE / short_side
    if scale == 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR)


def _letterbox(bgr: np.ndarray) -> tuple[np.ndarray, int]:
    """Pad very flat images top and bottom, as rapidocr does, so the detector sees whole lines."""
    h, w = bgr.shape[:2]
    if h > MIN_SIDE and w / h <= 8:
        return bgr, 0
    pad = abs(max(int(w / 8), MIN_SIDE) * 2 - h) // 2
    return np.pad(bgr, ((pad, pad), (0, 0), (0, 0))), pad


def _reading_order(boxes: np.ndarray) -> np.ndarray:
    """Top to bottom, left to right within a line (rapidocr's sort)."""
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i][0][1], boxes[i][0][0]))
    for i in range(len(order) - 1):
        for j in range(i, -1, -1):
            a, b = boxes[order[j]], boxes[order[j + 1]]
            if abs(b[0][1] - a[0][1]) < 10 and b[0][0] < a[0][0]:
                order[j], order[j + 1] = order[j + 1], order[j]
            else:
                break
    return boxes[order]


def _side_lengths(quad: np.ndarray) -> tuple[float, float]:
    width = max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3]))
    height = max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2]))
    return float(width), float(height)


def _length(crop: np.ndarray) -> float:
    """How long a crop is (width over height): longer lines weigh more in the 180° vote."""
    return float(crop.shape[1] / max(crop.shape[0], 1))


def _sideways(boxes: np.ndarray) -> bool:
    """The picture was taken or stored on its side: the vertical boxes, weighted by their length,
    outweigh the horizontal ones (boxes near square say nothing about orientation)."""
    vertical = horizontal = 0.0
    for w, h in map(_side_lengths, boxes):
        if h >= VERTICAL * w:
            vertical += h
        elif w >= VERTICAL * h:
            horizontal += w
    return vertical > horizontal


def _crops(bgr: np.ndarray, boxes: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Crop each box (clockwise from its top-left corner) straight; turn vertical ones by 90°
    (a column of text in an upright picture). Also returns each crop's corners in the image, in the
    crop's reading order (top-left, top-right, bottom-right, bottom-left)."""
    import cv2

    crops, corners = [], []
    for quad in boxes:
        w, h = _side_lengths(quad)
        cw, ch = max(1, int(w)), max(1, int(h))
        target = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], dtype=np.float32)
        matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
        crop = cv2.warpPerspective(
            bgr, matrix, (cw, ch), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
        )
        if h >= VERTICAL * w:
            # counter-clockwise: the crop's right edge (quad[1]->quad[2]) becomes its top edge
            crop = np.ascontiguousarray(np.rot90(crop))
            quad = quad[[1, 2, 3, 0]]
        crops.append(crop)
        corners.append(quad)
    return crops, corners


# -- CTC decoding into words ---------------------------------------------------------------------


def _decode(probs: np.ndarray, charset: list[str], space: int, columns: float) -> list[_Word] | None:
    """Greedy CTC decoding of one line, split into words (see the module docstring).

    ``columns`` is how many output columns cover the text (the rest is padding)."""
    best = probs.argmax(axis=1)
    chars: list[tuple[int, int, str, float]] = []  # first column, last column, character, probability
    previous = 0
    for t, k in enumerate(best):
        if k != 0 and k == previous and chars:
            chars[-1] = (chars[-1][0], t, chars[-1][2], chars[-1][3])
        elif k != 0:
            chars.append((t, t, charset[k] if k < len(charset) else "", float(probs[t, k])))
        previous = k
    letters = [c for c in chars if c[2] and not c[2].isspace()]
    if not letters or float(np.mean([c[3] for c in chars])) < MIN_LINE_SCORE:
        return None
    groups: list[list[tuple[int, int, str, float]]] = [[letters[0]]]
    for a, b in zip(letters, letters[1:], strict=False):
        gap = probs[a[1] + 1 : b[0], space]
        spaced = gap.size and float(gap.max()) >= (
            1.0 if _unspaced(a[2]) and _unspaced(b[2]) else SPACE_PROBABILITY
        )
        if spaced:
            groups.append([b])
        else:
            groups[-1].append(b)
    steps = [b[0] - a[0] for g in groups for a, b in zip(g, g[1:], strict=False)]
    pitch = float(np.median(steps)) if steps else _DEFAULT_PITCH
    spans = [[g[0][0] + 0.5 - pitch / 2, g[-1][1] + 0.5 + pitch / 2] for g in groups]
    for left, right in zip(spans, spans[1:], strict=False):  # neighbours must not overlap
        if left[1] > right[0]:
            left[1] = right[0] = (left[1] + right[0]) / 2
    return [
        _Word(
            text="".join(c[2] for c in g),
            confidence=100 * float(np.mean([c[3] for c in g])),
            start=float(np.clip(s / columns, 0, 1)),
            end=float(np.clip(e / columns, 0, 1)),
        )
        for g, (s, e) in zip(groups, spans, strict=True)
    ]


def _unspaced(char: str) -> bool:
    """Chinese characters and Japanese kana (and their punctuation) are written without spaces:
    between two of them only an emitted space separates words."""
    code = ord(char[0])
    return (
        0x3000 <= code <= 0x30FF
        or 0x3400 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFF60
    )


# -- filters and records -------------------------------------------------------------------------


def _bounds(polygon: Sequence[Point]) -> BoundingBox:
    xs, ys = [p.x for p in polygon], [p.y for p in polygon]
    return BoundingBox(left=min(xs), top=min(ys), width=max(xs) - min(xs), height=max(ys) - min(ys))


def _inside(polygon: tuple[Point, ...], regions: Sequence[Region]) -> bool:
    """More than half of the word's area lies in one of the regions (RegionOfInterest's rule)."""
    import shapely

    word = shapely.Polygon([(p.x, p.y) for p in polygon])
    area = word.area
    if area <= 0:
        return False
    for region in regions:
        if isinstance(region, BoundingBox):
            shape = shapely.box(
                region.left, region.top, region.left + region.width, region.top + region.height
            )
        else:
            shape = shapely.Polygon([(p.x, p.y) for p in region]).buffer(0)
        if word.intersection(shape).area > area / 2:
            return True
    return False


def _assemble(
    lines: list[_Line],
    min_confidence: float,
    min_box_height: float,
    min_box_width: float,
    regions: Sequence[Region] | None,
) -> list[TextDetection]:
    kept_lines: list[tuple[_Line, list[tuple[_Word, tuple[Point, ...]]]]] = []
    budget = MAX_WORDS
    for line in lines:
        kept = []
        for word in line.words:
            polygon = line.polygon(word.start, word.end)
            box = _bounds(polygon)
            if word.confidence < min_confidence or box.height < min_box_height or box.width < min_box_width:
                continue
            if regions and not _inside(polygon, regions):
                continue
            kept.append((word, polygon))
        kept = kept[:budget]
        budget -= len(kept)
        if kept:
            kept_lines.append((line, kept))
        if budget == 0:
            break
    out: list[TextDetection] = []
    words: list[TextDetection] = []
    next_word_id = len(kept_lines)
    for line_id, (line, kept) in enumerate(kept_lines):
        polygon = line.polygon(kept[0][0].start, kept[-1][0].end)
        out.append(
            TextDetection(
                text=" ".join(w.text for w, _ in kept),
                kind="LINE",
                id=line_id,
                parent_id=None,
                confidence=float(np.mean([w.confidence for w, _ in kept])),
                box=_bounds(polygon),
                polygon=polygon,
            )
        )
        for word, word_polygon in kept:
            words.append(
                TextDetection(
                    text=word.text,
                    kind="WORD",
                    id=next_word_id,
                    parent_id=line_id,
                    confidence=word.confidence,
                    box=_bounds(word_polygon),
                    polygon=word_polygon,
                )
            )
            next_word_id += 1
    return out + words
