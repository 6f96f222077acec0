"""The balanced 20-class grocery-produce benchmark split, shared by the research scripts and the bench.

Protocol (issue 3, "Benchmark"):

1. Labels are the sub-folders of ``DATASET_DIR``; keep the 20 with the most ``*.jpg`` images
   (ties broken by label name, ascending).
2. For each kept label (in name order), list its files sorted by name and pick
   ``min(40, n)`` of them with ``random.Random(0).sample(files, k)`` (a fresh ``Random(0)`` per label).
3. Shuffle the picked files with ``random.Random(f"{split_seed}/{label}")`` (a fresh generator per
   label, so a label's split does not depend on the other labels); the first 9 go to test, the rest
   (about 31) to train.

Only the file lists are produced here; decoding is up to the caller.

``blocked=True`` is a harder robustness check, not the benchmark: many photos are consecutive shots
of the same display (``Kiwi_004`` … ``Kiwi_009``), so a random split puts near-duplicates of most
test photos in train. The blocked split instead takes as test 9 *consecutive* picked files (in name
order, wrapping around, start drawn with ``random.Random(f"{split_seed}/{label}")``), so only the
photos at the two ends of the run have neighbours in train.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

N_LABELS = 20
PER_LABEL = 40
TEST_PER_LABEL = 9

DEFAULT_DATASET = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "grocery-produce"


@dataclass(frozen=True)
class Split:
    """A train/test split: parallel lists of paths and label indices into ``labels``."""

    labels: list[str]
    train_paths: list[Path]
    train_labels: list[int]
    test_paths: list[Path]
    test_labels: list[int]

    def describe(self) -> str:
        return (
            f"{len(self.labels)} labels, {len(self.train_paths)} train / {len(self.test_paths)} test images"
        )


def label_files(dataset_dir: Path) -> dict[str, list[Path]]:
    """Every label folder with its sorted ``.jpg`` files."""
    out: dict[str, list[Path]] = {}
    for d in sorted(p for p in dataset_dir.iterdir() if p.is_dir()):
        files = sorted(f for f in d.iterdir() if f.suffix.lower() in {".jpg", ".jpeg", ".png"})
        if files:
            out[d.name] = files
    return out


def make_split(
    dataset_dir: Path = DEFAULT_DATASET,
    split_seed: int = 0,
    n_labels: int = N_LABELS,
    per_label: int = PER_LABEL,
    test_per_label: int = TEST_PER_LABEL,
    blocked: bool = False,
) -> Split:
    """The benchmark split described in the module docstring."""
    files = label_files(dataset_dir)
    ranked = sorted(files, key=lambda name: (-len(files[name]), name))[:n_labels]
    labels = sorted(ranked)
    train_p: list[Path] = []
    train_y: list[int] = []
    test_p: list[Path] = []
    test_y: list[int] = []
    for idx, label in enumerate(labels):
        pool = files[label]
        chosen = random.Random(0).sample(pool, min(per_label, len(pool)))
        rng = random.Random(f"{split_seed}/{label}")
        if blocked:
            chosen.sort()
            start = rng.randrange(len(chosen))
            chosen = chosen[start:] + chosen[:start]
        else:
            rng.shuffle(chosen)
        test_p += chosen[:test_per_label]
        test_y += [idx] * len(chosen[:test_per_label])
        train_p += chosen[test_per_label:]
        train_y += [idx] * len(chosen[test_per_label:])
    return Split(labels, train_p, train_y, test_p, test_y)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset_dir", nargs="?", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--blocked", action="store_true", help="the harder blocked split (robustness check)")
    a = ap.parse_args()
    s = make_split(a.dataset_dir, a.split_seed, blocked=a.blocked)
    print(s.describe())
    for i, name in enumerate(s.labels):
        print(f"{name:16s} train {s.train_labels.count(i):3d} test {s.test_labels.count(i):2d}")
