"""Groups of similar photos, so that near-duplicates never land on both sides of a TRAIN/TEST split.

Three rules join images (union-find; a group is whatever the rules connect):

- explicit: entries with the same ``group`` (a manifest's ``visionloop-group``, a group folder) are one
  group. When any entry has an explicit group, the file-name rule is not applied: explicit groups
  replace guessing.
- phash: two images whose 64-bit difference hashes differ in at most PHASH_DISTANCE bits.
- sequence: files of one folder whose names share a prefix and end in a number (``train_Kiwi_004.jpg``)
  are a sequence; sorted by number, neighbours closer than the sequence's usual gap are one chain, and a
  chain too long to be one scene is cut into contiguous blocks.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import median_low

from visionloop.core.entities import DatasetEntry

PHASH_DISTANCE = 6  # dHash bits that may differ between a photo and its re-encoded or resized copy
# A dHash whose 8 rows repeat describes a left-to-right brightness gradient (the lighting) more than the
# picture, and any photo lit alike has it: among magnetic-tile's 910 surface crops, 6,500 pairs of
# different tiles are within 6 bits; using only hashes with at least 7 distinct rows leaves 11, while
# 97% of grocery-produce's store photos keep theirs. Such images are grouped by the other rules only.
MIN_DISTINCT_ROWS = 7
RULES = ("explicit", "phash", "sequence")
NO_GROUPS_WARNING = (
    "no groups of similar photos were found: if photos were taken in series, the evaluation may be "
    "optimistic; give groups explicitly (a folder per group with --groups-from-folders, or "
    '"visionloop-group" in a Ground Truth manifest)'
)
PLAIN_HASHES_WARNING = (
    "{n} of {total} images are plain textures or lit surfaces whose perceptual hashes cannot tell photos "
    "apart; they are grouped only by file names or explicit groups"
)
# 64 bits in 7 bands: two hashes at most 6 bits apart agree on at least one band (pigeonhole)
_BANDS = ((0, 10), (10, 19), (19, 28), (28, 37), (37, 46), (46, 55), (55, 64))
_NUMBERED = re.compile(r"^(.*?)(\d+)$")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Grouping:
    groups: dict[str, str]  # content hash -> group key; an image alone has its own key
    n_groups: int
    evidence: dict[str, int]  # merges made by each rule ("explicit", "phash", "sequence")
    warnings: tuple[str, ...] = ()


class _UnionFind:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {i: i for i in items}

    def find(self, x: str) -> str:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        return True


def group_entries(
    entries: Sequence[DatasetEntry], phashes: Mapping[str, str] | None = None, *, block_runs: bool = True
) -> Grouping:
    """Group ``entries`` by the three rules. ``phashes`` (content hash -> dHash hex) completes the
    entries' own ``phash``. The result depends only on the entries, not on their order.
    ``block_runs=False`` leaves the images of a numbered run too long to be one group unlinked instead
    of cutting it into blocks (for clustering by appearance, which the blocks would constrain)."""
    ordered = sorted({e.content_hash: e for e in entries}.values(), key=lambda e: e.content_hash)
    uf = _UnionFind(e.content_hash for e in ordered)
    evidence = dict.fromkeys(RULES, 0)
    explicit = [e for e in ordered if e.group]
    hashes, plain = _hashes(ordered, phashes or {})
    for pairs, rule in (
        (_explicit_pairs(explicit), "explicit"),
        (_phash_pairs(hashes), "phash"),
        ((() if explicit else _sequence_pairs(ordered, block_runs)), "sequence"),
    ):
        for a, b in pairs:
            evidence[rule] += uf.union(a, b)
    members: dict[str, list[DatasetEntry]] = defaultdict(list)
    for e in ordered:
        members[uf.find(e.content_hash)].append(e)
    groups: dict[str, str] = {}
    for root, group in members.items():
        names = sorted(e.group for e in group if e.group)
        key = f"group:{names[0]}" if names else f"auto:{root}"
        groups.update((e.content_hash, key) for e in group)
    warnings: list[str] = []
    if len(ordered) > 1 and len(members) == len(ordered):
        warnings.append(NO_GROUPS_WARNING)
    if plain and 4 * plain >= len(hashes) + plain:
        warnings.append(PLAIN_HASHES_WARNING.format(n=plain, total=len(hashes) + plain))
    return Grouping(groups, len(members), evidence, tuple(warnings))


def _explicit_pairs(entries: Sequence[DatasetEntry]) -> Iterable[tuple[str, str]]:
    first: dict[str, str] = {}
    for e in entries:
        assert e.group is not None
        head = first.setdefault(e.group, e.content_hash)
        if head != e.content_hash:
            yield head, e.content_hash


def _hashes(entries: Sequence[DatasetEntry], phashes: Mapping[str, str]) -> tuple[list[tuple[str, int]], int]:
    """The usable hashes as (content hash, 64-bit value), and how many were too plain to use."""
    values: list[tuple[str, int]] = []
    plain = 0
    for e in entries:
        text = phashes.get(e.content_hash) or e.phash
        try:
            value = int(text or "", 16)
        except ValueError:
            continue  # no hash, or a malformed one: it joins nothing
        if len({(value >> (8 * row)) & 0xFF for row in range(8)}) < MIN_DISTINCT_ROWS:
            plain += 1
        else:
            values.append((e.content_hash, value))
    return values, plain


def _phash_pairs(values: Sequence[tuple[str, int]]) -> Iterable[tuple[str, str]]:
    seen: set[tuple[int, int]] = set()
    for lo, hi in _BANDS:
        mask = (1 << (hi - lo)) - 1
        buckets: dict[int, list[int]] = defaultdict(list)
        for i, (_, value) in enumerate(values):
            buckets[(value >> lo) & mask].append(i)
        for bucket in buckets.values():
            for x, i in enumerate(bucket):
                for j in bucket[x + 1 :]:
                    if (i, j) in seen:
                        continue
                    seen.add((i, j))
                    if (values[i][1] ^ values[j][1]).bit_count() <= PHASH_DISTANCE:
                        yield values[i][0], values[j][0]


def sequence_key(source_ref: str) -> tuple[str, int] | None:
    """``(folder and name shape, number)`` for a file name ending in a number, else None. The shape is
    the name before its trailing digits with every other run of digits written ``#``, so that
    ``exp1_num_3504.jpg`` and ``exp2_num_3524.jpg`` (one tile under two lightings) are one sequence."""
    folder, _, name = source_ref.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    match = _NUMBERED.match(stem)
    if match is None:
        return None
    return f"{folder}/{_DIGITS.sub('#', match.group(1))}", int(match.group(2))


def _sequence_pairs(entries: Sequence[DatasetEntry], block_runs: bool = True) -> Iterable[tuple[str, str]]:
    sequences: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for e in entries:
        key = sequence_key(e.source_ref)
        if key is not None:
            sequences[key[0]].append((key[1], e.content_hash))
    for members in sequences.values():
        for block in sequence_blocks(sorted(members), block_runs):
            yield from ((block[0], h) for h in block[1:])


def sequence_blocks(members: Sequence[tuple[int, str]], block_runs: bool = True) -> list[list[str]]:
    """Cut one sequence, sorted by number, into chains and blocks (lists of content hashes).
    A chain breaks where a gap exceeds max(2, 3 x the median gap); a chain longer than
    max(2, ceil(n / 5)) is cut into contiguous blocks of about that size (or, with
    ``block_runs=False``, into single images)."""
    if len(members) < 2:
        return [[h for _, h in members]]
    gaps = [b[0] - a[0] for a, b in zip(members, members[1:], strict=False)]
    limit = max(2, 3 * median_low(gaps))
    chains: list[list[str]] = [[members[0][1]]]
    for gap, (_, digest) in zip(gaps, members[1:], strict=True):
        if gap > limit:
            chains.append([])
        chains[-1].append(digest)
    size = max(2, math.ceil(len(members) / 5))
    blocks: list[list[str]] = []
    for chain in chains:
        if not block_runs and len(chain) > size:
            blocks.extend([digest] for digest in chain)
            continue
        k = math.ceil(len(chain) / size)
        blocks.extend(chain[i * len(chain) // k : (i + 1) * len(chain) // k] for i in range(k))
    return blocks
