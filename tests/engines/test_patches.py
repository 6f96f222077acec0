"""Patch scores (engines.patches): the distances against a brute-force reference, the coreset, the
banks' files, and the real feature pyramid on magnetic-tile (defects lie farther from a bank of Free
tiles' patches than new Free tiles do)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from visionloop.engines.patches import PatchBanks, coreset, farthest_patch, feature_pyramid, patch_maps

from .conftest import DATASETS


def test_farthest_patch_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 5000, 8)).astype(np.float16)  # more patches than one query chunk
    bank = rng.normal(size=(40, 8)).astype(np.float16)
    got = farthest_patch(maps, bank)
    q, b = maps.astype(np.float64), bank.astype(np.float64)
    want = [np.sqrt(((img[:, None, :] - b[None]) ** 2).sum(-1)).min(1).max() for img in q]
    np.testing.assert_allclose(got, want, rtol=1e-3)


def test_a_patch_of_the_bank_is_at_distance_zero() -> None:
    rng = np.random.default_rng(1)
    bank = rng.normal(size=(10, 4)).astype(np.float16)
    assert farthest_patch(bank[None, :3], bank)[0] == pytest.approx(0.0, abs=1e-2)


def test_coreset_keeps_the_outlier_and_only_input_rows() -> None:
    rng = np.random.default_rng(2)
    patches = rng.normal(size=(3000, 16)).astype(np.float16)
    patches[1234] += 40.0  # far from everything: a k-centre coreset must cover it
    chosen = coreset(patches, 50, seed=0)
    assert chosen.shape == (50, 16) and chosen.dtype == np.float16
    assert any(np.array_equal(row, patches[1234]) for row in chosen)
    rows = {row.tobytes() for row in patches}
    assert all(row.tobytes() in rows for row in chosen)
    assert len({row.tobytes() for row in chosen}) == 50
    # fewer patches than asked: all of them
    assert len(coreset(patches[:20], 50, seed=0)) == 20
    # from a pool: the same seed, the same rows
    np.testing.assert_array_equal(
        coreset(patches, 30, seed=3, pool=500), coreset(patches, 30, seed=3, pool=500)
    )


def test_banks_score_each_label_and_round_trip_through_their_arrays() -> None:
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(6, 20, 4)).astype(np.float16)
    maps[3:] += 5.0  # label 1's images are elsewhere
    banks = PatchBanks.build(
        maps, [np.array([0, 1]), np.array([3, 4]), np.array([], dtype=np.int64)], 64, 30, seed=0
    )
    scores = banks.scores(maps[[2, 5]])
    assert scores.shape == (2, 3) and np.isnan(scores[:, 2]).all()  # no image: no bank, no score
    assert scores[0, 0] < scores[0, 1] and scores[1, 1] < scores[1, 0]  # nearer its own label's bank
    again = PatchBanks.from_state(64, 3, banks.state("b"), "b")
    np.testing.assert_array_equal(again.scores(maps), banks.scores(maps))


def test_defects_lie_farther_from_a_bank_of_free_tiles_than_other_free_photos(onnx_cache: Path) -> None:
    root = DATASETS / "magnetic-tile"
    if not root.is_dir():
        pytest.skip(f"{root} is absent: the shared datasets are not on this machine")
    free = sorted((root / "Free").glob("*.jpg"))
    bank_files, other_free = free[::8], free[4::16]  # every lighting in the bank; none of its photos
    defects = [
        f
        for label in ("Blowhole", "Break", "Crack", "Fray", "Uneven")
        for f in sorted((root / label).glob("*.jpg"))[::12]
    ]
    net = feature_pyramid(1, onnx_cache)
    size = 224
    bank_maps = patch_maps(net, [f.read_bytes() for f in bank_files], size)
    assert bank_maps.shape == (len(bank_files), (size // 8) ** 2, sum(net.channels[:2]))
    banks = PatchBanks.build(bank_maps, [np.arange(len(bank_files))], size, 2000, seed=0)
    score_free = banks.scores(patch_maps(net, [f.read_bytes() for f in other_free], size))[:, 0]
    score_defect = banks.scores(patch_maps(net, [f.read_bytes() for f in defects], size))[:, 0]
    # the share of (defect, free) pairs ranked right: 0.5 is chance (measured: 0.83)
    auroc = (score_defect[:, None] > score_free[None, :]).mean()
    assert auroc > 0.7, (auroc, score_free, score_defect)
