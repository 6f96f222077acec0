"""Faces benchmark: identification on ../shared/datasets/faces with one enrolment photo per person, and
the latency of DetectFaces and of an identity vector, with the face analyser called in this process.

    .venv/bin/python bench/faces.py [--dataset ../shared/datasets/faces] [--repeat 3] [--landmarks 68|5]
        [--json]

Identification: each person's first photo (identities.csv order) is enrolled; every other photo is a
probe, matched to the nearest enrolled face (largest face of each photo, Euclidean distance of the unit
vectors). Figures:

- rank-1: probes whose nearest enrolled face is their own person (a probe without a detected face counts
  as a miss);
- identified at the default threshold: the nearest is their own person *and* its similarity is ≥ 80;
- false-match rate: of all (probe, other person's enrolment) pairs, the share with similarity ≥ 80
  (what CompareFaces at its default threshold would call a match);
- false identification: probes whose own person is left out of the enrolled set, yet whose nearest
  other person has similarity ≥ 80 (a stranger taken for someone enrolled);
- rank-1 over every choice of enrolment photo: the same with each photo of each person as the enrolment
  in turn (mean), which depends less on which photo is first.

Attributes (Attributes=["ALL"], the largest face of each photo; the dataset has no attribute labels, so
these are consistency figures): the share of photos whose Gender agrees with the majority of its
person's photos, the median over people of the standard deviation of the middle of AgeRange across
their photos (taken years apart: an upper bound of the estimate's own spread), and the shares of
EyesOpen and MouthOpen read True. Emotions: the dataset has no emotion labels, so a few photos are
labelled by eye (``SMILING``: a broad smile; ``AT_REST``: a face at rest; the ambiguous ones left out),
and the figure is how many read HAPPY and CALM as their top emotion; and the emotion network's cost per
face (the crop and the network on the image the detector saw).

Landmarks: ``--landmarks 5`` runs the analyser on dlib's public-domain 5-point model (the setting
``face_landmarks``) and adds how far its Pose is from the 68-point model's on the same faces: the median
and p90 of the absolute differences of roll, yaw and pitch (degrees), and the slope of the 5-point yaw
against the 68-point yaw (the 68-point pose is itself an estimate: the dataset has no pose labels).

Latency: DetectFaces as the use case runs it (default attributes: detect, landmarks, pose, quality) and
the same with the identity vector, each image once untimed and then --repeat times; p50 and p90 over
every timed call.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "faces"
THRESHOLD = 80.0
# expressions labelled by eye (the dataset has no emotion labels): a broad smile, or a face at rest; the
# other photos (a faint smile, talking) are left out
SMILING = (
    "person_01/img1.jpg",
    "person_03/img49.jpg",
    "person_03/img50.jpg",
    "person_03/img8.jpg",
    "person_03/img9.jpg",
    "person_04/img15.jpg",
    "person_05/img17.jpg",
    "person_06/img18.jpg",
    "person_07/img20.jpg",
    "person_07/img21.jpg",
    "person_08/img22.jpg",
    "person_08/img23.jpg",
    "person_09/img24.jpg",
    "person_09/img25.jpg",
    "person_10/img28.jpg",
    "person_10/img42.jpg",
    "person_10/img43.jpg",
    "person_10/img44.jpg",
    "person_10/img46.jpg",
    "person_13/img38.jpg",
    "person_13/img39.jpg",
    "person_13/img41.jpg",
)
AT_REST = (
    "person_01/img10.jpg",
    "person_01/img2.jpg",
    "person_01/img4.jpg",
    "person_01/img5.jpg",
    "person_01/img6.jpg",
    "person_01/img7.jpg",
    "person_02/img53.jpg",
    "person_03/img47.jpg",
    "person_04/img13.jpg",
    "person_05/img59.jpg",
    "person_05/img61.jpg",
    "person_05/img62.jpg",
    "person_11/img29.jpg",
    "person_11/img30.jpg",
    "person_11/img32.jpg",
    "person_11/img33.jpg",
    "person_12/img34.jpg",
    "person_12/img35.jpg",
    "person_12/img36.jpg",
)


def load(dataset: Path) -> list[tuple[str, Path]]:
    with (dataset / "identities.csv").open() as f:
        return [(row["identity"], dataset / row["identity"] / row["file_name"]) for row in csv.DictReader(f)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def identification(
    people: list[str], vectors: list[tuple[float, ...] | None], enrolled: dict[str, int], match: float
) -> dict[str, Any]:
    """The figures of one enrolment choice (``enrolled``: person → index of the enrolled photo)."""
    from visionloop.core.faces import distance, similarity

    probes = [i for i in range(len(people)) if i not in enrolled.values()]
    rank1 = identified = false_id = 0
    pairs = false_pairs = 0
    for i in probes:
        v = vectors[i]
        if v is None:
            continue
        scores = {
            person: similarity(distance(v, vectors[j]), match)  # type: ignore[arg-type]
            for person, j in enrolled.items()
            if vectors[j] is not None
        }
        best = max(scores, key=lambda p: scores[p])
        rank1 += best == people[i]
        identified += best == people[i] and scores[best] >= THRESHOLD
        others = {p: s for p, s in scores.items() if p != people[i]}
        pairs += len(others)
        false_pairs += sum(s >= THRESHOLD for s in others.values())
        false_id += max(others.values(), default=0.0) >= THRESHOLD
    n = len(probes)
    return {
        "probes": n,
        "rank1": rank1 / n,
        "identified_at_threshold": identified / n,
        "false_match_rate": false_pairs / max(1, pairs),
        "false_identification_rate": false_id / n,
    }


def attribute_figures(people: list[str], details: list[Any]) -> dict[str, float | None]:
    """Consistency of the estimated attributes (see the module doc); None when not estimated."""
    values: dict[str, dict[str, list[Any]]] = {}
    for person, face in zip(people, details, strict=True):
        if face is None:
            continue
        mine = values.setdefault(person, {"gender": [], "age": [], "eyes": [], "mouth": []})
        found = {a.name: a.value for a in face.attributes}
        mine["gender"].append(found.get("Gender"))
        mine["age"].append(None if face.age_range is None else sum(face.age_range) / 2)
        mine["eyes"].append(found.get("EyesOpen"))
        mine["mouth"].append(found.get("MouthOpen"))
    genders = [v["gender"] for v in values.values() if None not in v["gender"]]
    agreeing = sum(max(g.count(x) for x in set(g)) for g in genders)
    ages = [
        statistics.pstdev(v["age"]) for v in values.values() if None not in v["age"] and len(v["age"]) > 1
    ]
    eyes = [e for v in values.values() for e in v["eyes"] if e is not None]
    mouths = [m for v in values.values() for m in v["mouth"] if m is not None]
    return {
        "gender_agrees_with_person": agreeing / sum(map(len, genders)) if genders else None,
        "age_middle_std_within_person_median": statistics.median(ages) if ages else None,
        "eyes_open_share": sum(eyes) / len(eyes) if eyes else None,
        "mouth_open_share": sum(mouths) / len(mouths) if mouths else None,
    }


def emotion_figures(
    rows: list[tuple[str, Path]], details: list[Any], analyser: Any, repeat: int
) -> dict[str, float | int | None]:
    """The top emotion against the labels by eye (HAPPY for SMILING, CALM for AT_REST), and the cost of
    the emotion network per face (crop and network, on the image the detector saw); None without fer."""
    import numpy as np
    from PIL import Image

    from visionloop.analysis.faces import DETECT_SIDE
    from visionloop.engines.preprocess import decode_image

    if analyser.emotions is None:
        return {"emotions_labelled": None}
    wanted = dict.fromkeys(SMILING, "HAPPY") | dict.fromkeys(AT_REST, "CALM")
    agree = {"HAPPY": 0, "CALM": 0}
    ms: list[float] = []
    for (person, path), face in zip(rows, details, strict=True):
        if face is None:
            continue
        label = wanted.get(f"{person}/{path.name}")
        if label is not None and face.emotions[0].type == label:
            agree[label] += 1
        picture = decode_image(path.read_bytes())
        scale = min(1.0, DETECT_SIDE / max(picture.size))
        if scale < 1.0:
            size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
            picture = picture.resize(size, Image.Resampling.BILINEAR)
        gray, (w, h), b = np.asarray(picture.convert("L")), picture.size, face.box
        left, top = round(b.left * w), round(b.top * h)
        box = (left, top, round((b.left + b.width) * w) - 1, round((b.top + b.height) * h) - 1)
        for _ in range(repeat):
            t = time.perf_counter()
            analyser.emotions.estimate(gray, *box)
            ms.append((time.perf_counter() - t) * 1000)
    return {
        "emotions_labelled": len(wanted),
        "emotions_smiling_read_happy": agree["HAPPY"],
        "emotions_smiling": len(SMILING),
        "emotions_at_rest_read_calm": agree["CALM"],
        "emotions_at_rest": len(AT_REST),
        "emotions_ms_per_face_p50": statistics.median(ms),
        "emotions_ms_per_face_p90": percentile(ms, 0.9),
    }


def pose_differences(five: list[Any], sixty_eight: list[Any]) -> dict[str, float]:
    """How far the 5-point Pose is from the 68-point one on the same photos (see the module doc)."""
    import numpy as np

    both = zip(five, sixty_eight, strict=True)
    pairs = [(a.pose, b.pose) for a, b in both if a is not None and b is not None]
    out: dict[str, float] = {"pose_compared_faces": len(pairs)}
    for axis in ("roll", "yaw", "pitch"):
        gaps = [abs((getattr(a, axis) - getattr(b, axis) + 180) % 360 - 180) for a, b in pairs]
        out[f"pose_{axis}_abs_diff_median"] = statistics.median(gaps)
        out[f"pose_{axis}_abs_diff_p90"] = percentile(gaps, 0.9)
    yaws = np.array([(b.yaw, a.yaw) for a, b in pairs])
    out["pose_yaw_slope_5_on_68"] = float(np.polyfit(yaws[:, 0], yaws[:, 1], 1)[0])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--landmarks", choices=["68", "5"], default="68", help="the landmark model")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from visionloop.analysis.registry import create_analyser

    analyser = create_analyser("faces", face_landmarks=args.landmarks)
    analyser.warm_up()
    rows = load(args.dataset)
    people = [person for person, _ in rows]
    vectors: list[tuple[float, ...] | None] = []
    details: list[Any] = []
    detect_ms: list[float] = []
    embed_ms: list[float] = []
    for _, path in rows:
        data = path.read_bytes()
        found = analyser.detect(data, embeddings=True)  # untimed: warms caches for this image
        vectors.append(found[0].embedding if found else None)
        every = analyser.detect(data, attributes=True)
        details.append(every[0] if every else None)
        for _ in range(args.repeat):
            t = time.perf_counter()
            analyser.detect(data)
            detect_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            analyser.detect(data, embeddings=True)
            embed_ms.append((time.perf_counter() - t) * 1000)
    first: dict[str, int] = {}
    for i, person in enumerate(people):
        first.setdefault(person, i)
    result = identification(people, vectors, first, analyser.match_distance)
    photos: dict[str, list[int]] = {}
    for i, person in enumerate(people):
        photos.setdefault(person, []).append(i)
    rotations = [
        identification(
            people, vectors, {p: idx[k % len(idx)] for p, idx in photos.items()}, analyser.match_distance
        )
        for k in range(max(len(idx) for idx in photos.values()))
    ]
    out = {
        "dataset": str(args.dataset),
        **attribute_figures(people, details),
        **emotion_figures(rows, details, analyser, args.repeat),
        "people": len(photos),
        "photos": len(rows),
        "photos_without_a_face": sum(v is None for v in vectors),
        "model_version": analyser.version,
        "match_distance": analyser.match_distance,
        "threshold": THRESHOLD,
        **result,
        "rank1_every_enrolment_mean": statistics.fmean(r["rank1"] for r in rotations),
        "rank1_every_enrolment_min": min(r["rank1"] for r in rotations),
        "false_match_rate_every_enrolment_mean": statistics.fmean(r["false_match_rate"] for r in rotations),
        "detect_faces_ms_p50": statistics.median(detect_ms),
        "detect_faces_ms_p90": percentile(detect_ms, 0.9),
        "detect_with_vector_ms_p50": statistics.median(embed_ms),
        "detect_with_vector_ms_p90": percentile(embed_ms, 0.9),
    }
    if args.landmarks == "5":
        reference = create_analyser("faces")
        found = [reference.detect(path.read_bytes()) for _, path in rows]
        out |= pose_differences(details, [faces[0] if faces else None for faces in found])
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['model_version']}, {out['people']} people, {out['photos']} photos ({args.dataset})")
    print(f"  photos without a detected face     {out['photos_without_a_face']}")
    print(f"  one enrolment photo (first), {result['probes']} probes:")
    print(f"    rank-1                           {result['rank1']:.3f}")
    print(f"    identified at similarity >= 80   {result['identified_at_threshold']:.3f}")
    print(f"    false-match rate (pairs)         {result['false_match_rate']:.4f}")
    print(f"    false identification (open set)  {result['false_identification_rate']:.3f}")
    print(
        f"  every enrolment photo in turn:     rank-1 mean {out['rank1_every_enrolment_mean']:.3f}, "
        f"min {out['rank1_every_enrolment_min']:.3f}; false-match rate mean "
        f"{out['false_match_rate_every_enrolment_mean']:.4f}"
    )
    if out["gender_agrees_with_person"] is not None:
        gender, age = out["gender_agrees_with_person"], out["age_middle_std_within_person_median"]
        eyes, mouth = out["eyes_open_share"], out["mouth_open_share"]
        print(f"  Gender agrees with its person's majority   {gender:.3f}")
        print(f"  AgeRange middle: std within a person       {age:.1f} years (median over people)")
        if eyes is not None and mouth is not None:
            print(f"  EyesOpen read True {eyes:.3f}, MouthOpen read True {mouth:.3f}")
    if out["emotions_labelled"] is not None:
        happy, calm = out["emotions_smiling_read_happy"], out["emotions_at_rest_read_calm"]
        print(
            f"  Emotions against labels by eye: smiling read HAPPY {happy}/{out['emotions_smiling']}, "
            f"at rest read CALM {calm}/{out['emotions_at_rest']}; per face p50 "
            f"{out['emotions_ms_per_face_p50']:.2f} ms, p90 {out['emotions_ms_per_face_p90']:.2f} ms"
        )
    if "pose_compared_faces" in out:
        print(f"  Pose against the 68-point model's, {out['pose_compared_faces']} faces (|difference|):")
        for axis in ("roll", "yaw", "pitch"):
            median, p90 = out[f"pose_{axis}_abs_diff_median"], out[f"pose_{axis}_abs_diff_p90"]
            print(f"    {axis:<5} median {median:4.1f}°, p90 {p90:4.1f}°")
        print(f"    yaw slope (5 points on 68)       {out['pose_yaw_slope_5_on_68']:.2f}")
    print(
        f"  DetectFaces                        p50 {out['detect_faces_ms_p50']:.0f} ms, "
        f"p90 {out['detect_faces_ms_p90']:.0f} ms"
    )
    print(
        f"  DetectFaces + identity vector      p50 {out['detect_with_vector_ms_p50']:.0f} ms, "
        f"p90 {out['detect_with_vector_ms_p90']:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
