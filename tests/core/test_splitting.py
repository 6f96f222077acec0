from datetime import UTC, datetime

from visionloop.core.entities import DatasetEntry, EntrySource
from visionloop.core.splitting import plan_split


def entry(i: int, *labels: str) -> DatasetEntry:
    return DatasetEntry(
        id=i,
        dataset_id=1,
        content_hash=f"{i:064x}",
        source_ref=f"{i}.jpg",
        format="JPEG",
        width=100,
        height=100,
        size_bytes=1,
        labels=labels,
        boxes=(),
        source=EntrySource.IMPORT,
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def dataset() -> list[DatasetEntry]:
    out, i = [], 0
    for label, n in {"a": 50, "b": 10, "c": 2, "d": 1}.items():
        for _ in range(n):
            i += 1
            out.append(entry(i, label))
    out.append(entry(999))  # unlabelled
    return out


def test_stratified_80_20_with_one_test_image_for_every_label_with_two() -> None:
    chosen = plan_split(dataset(), 0.2, seed=42)
    per_label = {lab: sum(lab in e.labels for e in chosen) for lab in "abcd"}
    assert per_label == {"a": 10, "b": 2, "c": 1, "d": 0}
    assert all(e.labels for e in chosen), "unlabelled entries stay in TRAIN"


def test_split_is_reproducible_and_order_independent() -> None:
    first = [e.content_hash for e in plan_split(dataset(), 0.2, seed=7)]
    again = [e.content_hash for e in plan_split(list(reversed(dataset())), 0.2, seed=7)]
    other = [e.content_hash for e in plan_split(dataset(), 0.2, seed=8)]
    assert first == again
    assert first != other


def test_multi_label_entries_stratify_by_rarest_label() -> None:
    entries = [entry(i, "common", "rare") for i in range(1, 4)] + [entry(i, "common") for i in range(10, 30)]
    chosen = plan_split(entries, 0.2, seed=1)
    assert sum("rare" in e.labels for e in chosen) == 1
