"""Groups of similar photos: the three rules, on generated entries and on the shared real photos."""

from __future__ import annotations

import hashlib
import io
import random
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from tests.conftest import shared_dataset
from tests.factories import photo
from visionloop.core.entities import DatasetEntry, EntrySource
from visionloop.core.grouping import NO_GROUPS_WARNING, group_entries, sequence_blocks, sequence_key
from visionloop.imaging import PillowInspector


def entry(ref: str, *labels: str, group: str | None = None, phash: str | None = None) -> DatasetEntry:
    return DatasetEntry(
        id=0,
        dataset_id=1,
        content_hash=hashlib.sha256(ref.encode()).hexdigest(),
        source_ref=ref,
        format="JPEG",
        width=100,
        height=100,
        size_bytes=1,
        labels=labels or ("x",),
        boxes=(),
        source=EntrySource.IMPORT,
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        phash=phash,
        group=group,
    )


def same_groups(grouping_groups: dict[str, str], entries: list[DatasetEntry]) -> list[list[str]]:
    """The groups as sorted lists of source refs."""
    by_key: dict[str, list[str]] = {}
    for e in entries:
        by_key.setdefault(grouping_groups[e.content_hash], []).append(e.source_ref)
    return sorted(sorted(refs) for refs in by_key.values())


def encode(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def inspected(refs_and_bytes: list[tuple[str, bytes]]) -> list[DatasetEntry]:
    inspector = PillowInspector()
    out = []
    for ref, data in refs_and_bytes:
        info = inspector.inspect(data)
        out.append(replace(entry(ref), content_hash=info.content_hash, phash=info.phash))
    return out


# --- file-name sequences -------------------------------------------------------------------------------


def test_sequence_key_reads_folder_shape_and_number() -> None:
    assert sequence_key("Kiwi/train_Kiwi_004.jpg") == ("Kiwi/train_Kiwi_", 4)
    assert sequence_key("s3://bkt/line/Slot_101.JPG") == ("s3://bkt/line/Slot_", 101)
    # the lighting number inside the name is part of the shape, not the sequence number
    assert (
        sequence_key("Free/exp1_num_3504.jpg")
        == sequence_key("Free/exp6_num_3504.jpg")
        == (
            "Free/exp#_num_",
            3504,
        )
    )
    assert sequence_key("Kiwi/kiwi.jpg") is None


def test_magnetic_tile_ids_stay_together_until_a_large_gap() -> None:
    # five tiles, each under six lightings (exp1..exp6), as magnetic-tile numbers them: 3504 … 3620, 3786 …
    offsets = (0, 20, 35, 50, 68, 116)
    names = [
        f"Free/exp{k + 1}_num_{3504 + 282 * tile + d}.jpg" for tile in range(5) for k, d in enumerate(offsets)
    ]
    es = [entry(n) for n in names]
    grouping = group_entries(es)
    groups = same_groups(grouping.groups, es)
    assert [len(g) for g in groups] == [6] * 5
    assert [groups[0][0], groups[0][-1]] == ["Free/exp1_num_3504.jpg", "Free/exp6_num_3620.jpg"]
    assert groups[1][0] == "Free/exp1_num_3786.jpg"
    assert grouping.evidence["sequence"] == 25 and grouping.n_groups == 5


def test_a_long_consecutive_run_is_cut_into_five_contiguous_blocks() -> None:
    names = [f"Kiwi/train_Kiwi_{i:03d}.jpg" for i in range(1, 47)]
    es = [entry(n) for n in names]
    groups = same_groups(group_entries(es).groups, es)
    assert sorted(len(g) for g in groups) == [9, 9, 9, 9, 10]
    for g in groups:  # contiguous: the numbers of a block follow each other
        numbers = sorted(int(n[-7:-4]) for n in g)
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    # five files: blocks of at most max(2, ceil(5 / 5)) = 2; the gap of 47 breaks the chain
    blocks = sequence_blocks([(i, f"h{i}") for i in (1, 2, 3, 50, 51)])
    assert blocks == [["h1"], ["h2", "h3"], ["h50", "h51"]]


def test_without_blocking_a_long_run_leaves_its_images_alone_and_short_chains_whole() -> None:
    # what scene clustering starts from: the blocks of a long run would bind scenes together
    names = [f"Kiwi/train_Kiwi_{i:03d}.jpg" for i in range(1, 47)]
    es = [entry(n) for n in names]
    assert group_entries(es, block_runs=False).n_groups == 46
    blocks = sequence_blocks([(i, f"h{i}") for i in (1, 2, 3, 50, 51)], block_runs=False)
    assert blocks == [["h1"], ["h2"], ["h3"], ["h50", "h51"]]
    # magnetic-tile: five tiles of six lightings, ids close within a tile: the chains are kept
    offsets = (0, 20, 35, 50, 68, 116)
    tiles = [f"Free/exp1_num_{1000 + 500 * t + o}.jpg" for t in range(5) for o in offsets]
    tile_entries = [entry(n) for n in tiles]
    assert group_entries(tile_entries, block_runs=False).n_groups == group_entries(tile_entries).n_groups == 5


def test_sequences_are_per_folder_and_prefix_and_need_a_number() -> None:
    es = [
        entry("a/IMG_1.jpg"),
        entry("b/IMG_2.jpg"),
        entry("a/DSC_2.jpg"),
        entry("a/cat.jpg"),
        entry("a/dog.jpg"),
    ]
    grouping = group_entries(es)
    assert grouping.n_groups == 5 and grouping.evidence == {"explicit": 0, "phash": 0, "sequence": 0}
    assert grouping.warnings == (NO_GROUPS_WARNING,)
    assert len(set(grouping.groups.values())) == 5


# --- explicit groups -----------------------------------------------------------------------------------


def test_explicit_groups_replace_file_name_guessing() -> None:
    es = [
        entry("Kiwi/train_Kiwi_001.jpg", group="monday"),
        entry("Kiwi/train_Kiwi_002.jpg", group="tuesday"),
        entry("Kiwi/train_Kiwi_003.jpg", group="monday"),
        entry("Kiwi/train_Kiwi_004.jpg"),  # no group: alone, since names are not guessed any more
        entry("Apple/train_Apple_001.jpg", group="monday"),  # same name within the project: same group
    ]
    grouping = group_entries(es)
    assert same_groups(grouping.groups, es) == [
        ["Apple/train_Apple_001.jpg", "Kiwi/train_Kiwi_001.jpg", "Kiwi/train_Kiwi_003.jpg"],
        ["Kiwi/train_Kiwi_002.jpg"],
        ["Kiwi/train_Kiwi_004.jpg"],
    ]
    assert grouping.evidence == {"explicit": 2, "phash": 0, "sequence": 0}
    assert grouping.groups[es[0].content_hash] == "group:monday"
    assert grouping.warnings == ()


def test_grouping_ignores_entry_order() -> None:
    es = [entry(f"k/train_{i:03d}.jpg") for i in range(30)] + [entry("k/x.jpg", phash="0123456789abcdef")]
    assert group_entries(es) == group_entries(list(reversed(es)))


# --- perceptual hashes ---------------------------------------------------------------------------------


def test_phash_joins_a_reencoded_and_resized_copy_of_a_generated_photo() -> None:
    a, b = photo(1), photo(2)
    es = inspected(
        [
            ("a.jpg", encode(a)),
            ("a-small.jpg", encode(a.resize((288, 216)), quality=70)),
            ("b.jpg", encode(b)),
        ]
    )
    grouping = group_entries(es)
    assert same_groups(grouping.groups, es) == [["a-small.jpg", "a.jpg"], ["b.jpg"]]
    assert grouping.evidence["phash"] == 1


def test_phash_joins_copies_of_real_photos_and_not_different_ones() -> None:
    root = shared_dataset("grocery-produce")
    paths = (
        sorted((root / "Kiwi").glob("train_*.jpg"))[:3] + sorted((root / "Banana").glob("train_*.jpg"))[:3]
    )
    originals = [(f"{p.parent.name}-{'abc'[i % 3]}.jpg", p.read_bytes()) for i, p in enumerate(paths)]
    copies = []
    for name, data in originals[::3]:  # one Kiwi and one Banana photo, re-encoded 10% smaller
        img = Image.open(io.BytesIO(data))
        copies.append((f"copy-{name}", encode(img.resize((img.width * 9 // 10, img.height * 9 // 10)), 75)))
    es = inspected(originals + copies)
    groups = same_groups(group_entries(es).groups, es)
    assert [g for g in groups if len(g) > 1] == [
        ["Banana-a.jpg", "copy-Banana-a.jpg"],
        ["Kiwi-a.jpg", "copy-Kiwi-a.jpg"],
    ]
    assert len(groups) == 6  # the six different photos stay apart


def test_two_thousand_hashes_group_fast() -> None:
    rng = random.Random(0)
    es = [entry(f"img{i}x.jpg", phash=f"{rng.getrandbits(64):016x}") for i in range(2000)]
    started = time.perf_counter()
    grouping = group_entries(es)
    assert time.perf_counter() - started < 0.5
    assert grouping.n_groups == 2000


# --- the shared real datasets --------------------------------------------------------------------------


def _load(root: Path, pattern: str) -> list[DatasetEntry]:
    inspector = PillowInspector()
    out = []
    for p in sorted(root.glob(pattern)):
        info = inspector.inspect(p.read_bytes())
        ref = str(p.relative_to(root))
        out.append(replace(entry(ref, p.parent.name), content_hash=info.content_hash, phash=info.phash))
    return out


def test_grocery_produce_groups_are_blocks_of_each_series() -> None:
    es = _load(shared_dataset("grocery-produce"), "*/train_*.jpg")
    grouping = group_entries(es)
    sizes = Counter(grouping.groups.values()).values()
    # 5 blocks per series (Apple, Melon, Pear, … hold one series per variety): no image alone
    assert 200 <= grouping.n_groups <= 300 and min(sizes) >= 3 and max(sizes) <= 20
    kiwi = {grouping.groups[e.content_hash] for e in es if e.labels == ("Kiwi",)}
    assert len(kiwi) == 5


def test_magnetic_tile_groups_are_tiles_under_their_lightings() -> None:
    es = _load(shared_dataset("magnetic-tile"), "*/*.jpg")
    grouping = group_entries(es)
    sizes = Counter(Counter(grouping.groups.values()).values())
    assert 150 <= grouping.n_groups <= 210
    assert sizes.most_common(1)[0][0] == 6  # mostly one tile under six lightings
    assert max(sizes) <= 12
    assert any("plain textures" in w for w in grouping.warnings)
