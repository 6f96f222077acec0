"""Face search at scale: IndexFaces and SearchFacesByImage (and SearchFaces) on collections of 1,000,
10,000 and 100,000 faces, through the use cases on a real SQLite database in a temporary folder.

    .venv/bin/python bench/face_search.py [--sizes 1000,10000,100000] [--repeat 20] [--json]

The collection is filled with synthetic faces (random unit vectors of 128 values, as many as the size;
stored in batches straight through the repository, which is what IndexFaces stores). Then, per size:

- load: the first search after the faces were stored, which reads every vector into the in-memory matrix;
- SearchFaces: a stored face's nearest faces (warm matrix), p50 and p90;
- SearchFacesByImage: a real photo through the real face analyser (detect, embed, search), p50 and p90,
  and the search part alone (the same vector searched without the analyser);
- IndexFaces: a real photo indexed (detect, embed, store), p50 and p90, each followed by a search, whose
  p50 shows what a search pays after a change (the matrix is extended, not reloaded, in this process).

Identification through a collection (``--identify``, the faces dataset): each person's first photo is
indexed (ExternalImageId = the person), every other photo searched with SearchFacesByImage; rank-1 is
the share of probes whose best match is their own person, "identified" the share whose best match is
their own person at the default FaceMatchThreshold (80), and a false match a probe whose best match at
80 is someone else.

Without the [faces] extra the two image operations are skipped and only the searches are measured.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "faces"
DIM = 128
BATCH = 5000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(ms), 2), "p90_ms": round(percentile(ms, 0.9), 2)}


def fill(svc: Any, collection_id: int, n: int, rng: np.random.Generator) -> None:
    """``n`` synthetic faces: random unit vectors, stored in batches."""
    from visionloop.core.records.analysis import BoundingBox
    from visionloop.core.records.collections import NewFace

    box = BoundingBox(0.3, 0.2, 0.4, 0.5)
    done = 0
    while done < n:
        k = min(BATCH, n - done)
        v = rng.standard_normal((k, DIM)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        image_id = str(uuid.uuid4())
        faces = [NewFace(str(uuid.uuid4()), image_id, None, box, 99.0, row.tobytes()) for row in v]
        svc.repo.add_faces(collection_id, faces, svc.clock.now())
        done += k


def run_size(svc: Any, analysers: Any, n: int, repeat: int, photo: bytes | None, seed: int) -> dict[str, Any]:
    from visionloop.core import collections as col

    name = f"bench-{n}"
    c = col.create_collection(svc, analysers, name)
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    fill(svc, c.id, n, rng)
    fill_s = time.perf_counter() - t
    probe = svc.repo.list_faces(c.id, limit=1)[0].face_id
    t = time.perf_counter()
    col.search_faces(svc, analysers, name, probe, col.SearchOptions(max_faces=10, threshold=0))
    load_ms = (time.perf_counter() - t) * 1000
    out: dict[str, Any] = {"faces": n, "fill_s": round(fill_s, 1), "first_search_load_ms": round(load_ms, 1)}
    options = col.SearchOptions(max_faces=10)
    out["search_faces"] = summary(
        timed(lambda: col.search_faces(svc, analysers, name, probe, options), repeat)
    )
    vector = svc.repo.face_vectors(c.id, [probe])[probe]
    out["nearest_only"] = summary(timed(lambda: svc.repo.nearest_faces(c.id, vector, 10), repeat))
    if photo is not None:
        image: bytes = photo

        def search() -> Any:
            return col.search_faces_by_image(svc, analysers, name, image, options)

        search()  # warm the analyser
        out["search_faces_by_image"] = summary(timed(search, repeat))
        index_ms, after_ms = [], []
        for _ in range(repeat):
            index_ms += timed(lambda: col.index_faces(svc, analysers, name, photo), 1)
            after_ms += timed(lambda: col.search_faces(svc, analysers, name, probe, options), 1)
        out["index_faces"] = summary(index_ms)
        out["search_after_index"] = summary(after_ms)
    col.delete_collection(svc, name)
    return out


def identify(svc: Any, analysers: Any, dataset: Path) -> dict[str, Any]:
    """Rank-1, identified and false matches at the default threshold, through a collection."""
    import csv

    from visionloop.core import collections as col
    from visionloop.errors import InvalidInput

    with (dataset / "identities.csv").open() as f:
        rows = [(r["identity"], dataset / r["identity"] / r["file_name"]) for r in csv.DictReader(f)]
    col.create_collection(svc, analysers, "identify")
    enrolled: set[str] = set()
    probes = []
    for person, path in rows:
        if person in enrolled:
            probes.append((person, path))
            continue
        options = col.IndexOptions(external_image_id=person, max_faces=1, quality_filter="NONE")
        if col.index_faces(svc, analysers, "identify", path.read_bytes(), options).indexed:
            enrolled.add(person)
    rank1 = identified = false_match = 0
    everything = col.SearchOptions(max_faces=1, threshold=0)
    for person, path in probes:
        try:
            r = col.search_faces_by_image(svc, analysers, "identify", path.read_bytes(), everything)
        except InvalidInput:  # no face found: a miss
            continue
        best = r.matches[0] if r.matches else None
        if best is None:
            continue
        own = best.face.external_image_id == person
        rank1 += own
        identified += own and best.similarity >= col.DEFAULT_FACE_MATCH_THRESHOLD
        false_match += not own and best.similarity >= col.DEFAULT_FACE_MATCH_THRESHOLD
    col.delete_collection(svc, "identify")
    n = len(probes)
    return {
        "people": len(enrolled),
        "probes": n,
        "rank1": round(rank1 / n, 4),
        "identified_at_80": round(identified / n, 4),
        "false_match_at_80": round(false_match / n, 4),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--identify", action="store_true", help="Identification on --dataset instead.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from visionloop.analysis.registry import create_analyser
    from visionloop.bootstrap import build_services
    from visionloop.errors import Unavailable
    from visionloop.settings import load_settings

    analyser = create_analyser("faces", num_threads=1)
    photo: bytes | None = (args.dataset / "person_01" / "img1.jpg").read_bytes()
    try:
        analyser.warm_up()
    except Unavailable as e:
        print(f"face analyser unavailable ({e}): measuring the searches only", file=sys.stderr)
        photo = None
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        svc = build_services(load_settings({"data_dir": tmp}, environ={}))
        try:
            if args.identify:
                print(json.dumps(identify(svc, lambda kind: analyser, args.dataset)))
                return 0
            for n in (int(s) for s in args.sizes.split(",")):
                results.append(run_size(svc, lambda kind: analyser, n, args.repeat, photo, args.seed))
                if not args.json:
                    print(json.dumps(results[-1]), flush=True)
        finally:
            svc.close()
    if args.json:
        print(json.dumps({"dim": DIM, "repeat": args.repeat, "sizes": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
