"""Importing labelled images into a dataset: from a folder tree, a Ground Truth manifest, a COCO file, or
one uploaded image. Every input is validated; valid entries are kept, the rest are reported with a
reason; importing the same data twice adds nothing.

What an import may read is a SourceAccess: requests over HTTP may read buckets and the configured import
roots only; the CLI any path. Either way only regular files are read, and never more than their cap."""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from visionloop.core.entities import (
    Box,
    Dataset,
    EntrySource,
    ImageInfo,
    ImportIssue,
    ImportReport,
    NewEntry,
    Project,
    TaskType,
)
from visionloop.core.images import TRAINING_LIMITS, ImageLimits, check_image, store_images
from visionloop.core.keys import parse_s3_prefix, parse_s3_uri
from visionloop.core.labels import InvalidLabel, check_label
from visionloop.core.manifests import ManifestLine, PixelBox, check_group
from visionloop.core.services import Services
from visionloop.errors import ImageTooLarge, InvalidInput, InvalidManifest, NotFound, VisionloopError

Progress = Callable[[int, int], None]  # (done, total)

BATCH = 256
BOX_TOLERANCE_PX = 1.0  # rounding slack for boxes that touch the image border


@dataclass(frozen=True)
class Candidate:
    """One image to import: where it comes from, how to read it, and its labels."""

    ref: str  # shown to the user in issues
    source_ref: str  # recorded on the entry
    load: Callable[[], bytes]
    labels: tuple[str, ...] = ()
    boxes: tuple[PixelBox, ...] = ()
    kind: str = "classification"  # or "detection" / "unlabeled"
    group: str | None = None  # explicit group of similar photos
    manifest_line: str | None = None  # the Ground Truth line it comes from, as given


@dataclass
class _Checked:
    candidate: Candidate
    data: bytes = b""
    info: ImageInfo | None = None
    boxes: tuple[Box, ...] = ()
    issue: ImportIssue | None = None


@dataclass
class _Pending:
    entry: NewEntry
    ref: str


def run_import(
    svc: Services,
    project: Project,
    dataset: Dataset,
    items: Iterable[Candidate | ImportIssue],
    *,
    source: EntrySource = EntrySource.IMPORT,
    limits: ImageLimits = TRAINING_LIMITS,
    progress: Progress | None = None,
    workers: int | None = None,
    before_adding: Callable[[ImportReport], None] | None = None,
    rejected: list[tuple[Candidate, ImportIssue]] | None = None,
) -> ImportReport:
    """Validate and add ``items`` to ``dataset``. Issues already found by a parser are reported as failed.
    ``before_adding`` sees the report once every item is checked, before any entry is added (``imported``
    is then how many would be): raising there refuses the whole import, with no entry to take back.
    Each candidate that fails is appended to ``rejected`` with its issue (a manifest keeps such lines)."""
    report = ImportReport()
    candidates: list[Candidate] = []
    for item in items:
        if isinstance(item, ImportIssue):
            _fail(report, item)
        else:
            candidates.append(item)
    total = len(candidates)
    if progress:
        progress(0, total)

    known = _known_hashes(svc, project)
    pending: dict[str, _Pending] = {}
    to_store: list[tuple[str, bytes]] = []  # image bytes are stored in batches, not held to the end
    workers = workers or min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, checked in enumerate(
            pool.map(lambda c: _check(c, project.task, svc, limits), candidates), start=1
        ):
            failed = report.failed
            if _collect(report, checked, project.task, known, pending, source) and checked.info:
                to_store.append((checked.info.content_hash, checked.data))
            if rejected is not None and report.failed > failed:
                rejected.append((checked.candidate, report.issues[-1]))
            if len(to_store) >= BATCH:
                store_images(svc.store, to_store)
                to_store = []
            if progress:
                progress(done, total)
    store_images(svc.store, to_store)

    # entries are added only now: a later copy of the same image may still merge its labels in
    new_entries = list(pending.values())
    report.imported = len(new_entries)
    if before_adding is not None:
        before_adding(report)
    for start in range(0, len(new_entries), BATCH):
        chunk = new_entries[start : start + BATCH]
        report.entry_ids += svc.repo.add_entries(dataset.id, [p.entry for p in chunk], svc.clock.now())
    labels = sorted(
        {lab for p in new_entries for lab in p.entry.labels}
        | {b.label for p in new_entries for b in p.entry.boxes}
    )
    if labels:
        svc.repo.add_labels(project.id, labels)
    report.labels = set(labels)
    return report


def _fail(report: ImportReport, issue: ImportIssue) -> None:
    report.failed += 1
    report.issues.append(issue)


def _known_hashes(svc: Services, project: Project) -> dict[str, str]:
    """Content hashes already in the project's datasets, mapped to the dataset type."""
    known: dict[str, str] = {}
    for ds in svc.repo.list_datasets(project.id):
        for h in svc.repo.entry_hashes(ds.id):
            known[h] = ds.type.value.upper()
    return known


def _check(c: Candidate, task: TaskType, svc: Services, limits: ImageLimits) -> _Checked:
    out = _Checked(c)
    try:
        _check_kind(c, task)
        labels = tuple(dict.fromkeys(check_label(lab) for lab in c.labels))
        if labels != c.labels:
            c = replace(c, labels=labels)
            out.candidate = c
        data = c.load()
        info = check_image(data, svc.inspector, limits)
        out.data, out.info = data, info
        out.boxes = tuple(ratio_box(b, info.width, info.height, i) for i, b in enumerate(c.boxes))
    except NotFound as e:
        out.issue = ImportIssue(c.ref, "ERROR_INVALID_SOURCE_REF", str(e))
    except InvalidBox as e:
        out.issue = ImportIssue(c.ref, "ERROR_INVALID_BOUNDING_BOX", str(e))
    except _KindError as e:
        out.issue = ImportIssue(c.ref, "ERROR_UNSUPPORTED_USE_CASE_TYPE", str(e))
    except InvalidLabel as e:
        out.issue = ImportIssue(c.ref, "ERROR_INVALID_LABEL_NAME_LENGTH", str(e))
    except VisionloopError as e:  # the image checks: their code says which rule failed
        out.issue = ImportIssue(c.ref, str(e.details.get("code", "ERROR_INVALID_IMAGE")), str(e))
    except OSError as e:
        out.issue = ImportIssue(
            c.ref, "ERROR_INVALID_SOURCE_REF", f"cannot read the image: {e.strerror or e}"
        )
    return out


class InvalidBox(InvalidInput):
    """A box with no size, or outside its image."""


class _KindError(Exception):
    pass


def _check_kind(c: Candidate, task: TaskType) -> None:
    if c.kind == "detection" and task is not TaskType.DETECTION:
        raise _KindError(f"bounding boxes cannot be imported into a {task.value} project")
    if c.kind == "classification" and task is TaskType.DETECTION:
        raise _KindError("image-level labels cannot be imported into an object_detection project; give boxes")
    if task is TaskType.CLASSIFICATION and len(c.labels) > 1:
        raise _KindError(
            f"the project is single-label but the image has {len(c.labels)} labels: {', '.join(c.labels)}"
        )


def ratio_box(b: PixelBox, w: int, h: int, i: int) -> Box:
    """Box ``i`` of a ``w`` x ``h`` image, from pixels to ratios of the image size; a box that pokes out by
    at most BOX_TOLERANCE_PX (rounding) is clipped, any other outside box is InvalidBox."""
    if b.width <= 0 or b.height <= 0:
        raise InvalidBox(f"box {i} ({b.label}) has a zero or negative size")
    t = BOX_TOLERANCE_PX
    if b.left < -t or b.top < -t or b.left + b.width > w + t or b.top + b.height > h + t:
        raise InvalidBox(
            f"box {i} ({b.label}) at left={b.left:g} top={b.top:g} width={b.width:g} height={b.height:g} "
            f"lies outside the {w}x{h} image"
        )
    left, top = max(0.0, b.left), max(0.0, b.top)
    right, bottom = min(float(w), b.left + b.width), min(float(h), b.top + b.height)
    return Box(b.label, left / w, top / h, (right - left) / w, (bottom - top) / h)


def _collect(
    report: ImportReport,
    checked: _Checked,
    task: TaskType,
    known: dict[str, str],
    pending: dict[str, _Pending],
    source: EntrySource,
) -> bool:
    """Record the outcome of one checked candidate; True when it is a new image to store."""
    c = checked.candidate
    if checked.issue is not None:
        _fail(report, checked.issue)
        return False
    assert checked.info is not None
    digest = checked.info.content_hash
    if digest in known:
        report.skipped += 1
        report.issues.append(
            ImportIssue(c.ref, "DUPLICATE", f"the same image is already in the {known[digest]} dataset")
        )
        return False
    previous = pending.get(digest)
    if previous is None:
        entry = NewEntry(
            checked.info,
            c.source_ref,
            c.labels,
            checked.boxes,
            source,
            phash=checked.info.phash,
            group=c.group,
            manifest_line=c.manifest_line,
        )
        pending[digest] = _Pending(entry, c.ref)
        return True
    merged = _merge(previous.entry, c.labels, checked.boxes, task)
    if merged is None:
        _fail(
            report,
            ImportIssue(
                c.ref,
                "DUPLICATE_CONFLICT",
                f"the same image as {previous.ref} but with other labels "
                f"({', '.join(c.labels) or 'none'} vs {', '.join(previous.entry.labels) or 'none'})",
            ),
        )
        return False
    if merged == previous.entry:
        report.skipped += 1
        report.issues.append(ImportIssue(c.ref, "DUPLICATE", f"the same image as {previous.ref}"))
        return False
    previous.entry = merged
    report.issues.append(ImportIssue(c.ref, "MERGED", f"the same image as {previous.ref}; labels merged"))
    return False


def _merge(entry: NewEntry, labels: Sequence[str], boxes: Sequence[Box], task: TaskType) -> NewEntry | None:
    """Merge a repeated image: multi-label projects union the labels; otherwise labels must agree."""
    if task is TaskType.MULTI_LABEL:
        union = tuple(dict.fromkeys((*entry.labels, *labels)))
        return replace(entry, labels=union)
    if tuple(labels) == entry.labels and tuple(boxes) == entry.boxes:
        return entry
    return None


# --- what an import may read ----------------------------------------------------------------------------

DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SourceAccess:
    """What an import may read from the server's disk. ``roots`` None: any path this process can read (the
    CLI, run by a person on the server); a tuple: only paths inside those folders (requests over HTTP;
    empty: none, so only s3:// sources). ``max_file_bytes`` caps a manifest or COCO file."""

    roots: tuple[str, ...] | None = None
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES

    @classmethod
    def over_http(cls, roots: Sequence[str], max_file_mb: float) -> SourceAccess:
        return cls(tuple(os.path.realpath(r) for r in roots), int(max_file_mb * 1024 * 1024))

    def local_path(self, path: str) -> str:
        """``path`` if this access may read it; checked before anything is opened, and with every link
        resolved, so neither ``..`` nor a link leads out of the import roots."""
        if self.roots is None:
            return path
        real = os.path.realpath(path)
        if not any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in self.roots):
            where = "s3://bucket/prefix sources"
            if self.roots:
                where += " and paths inside the import_roots folders"
            raise InvalidInput(
                f"{path!r} is not readable here: imports over HTTP read only {where} (setting import_roots)",
                code="ERROR_SOURCE_NOT_ALLOWED",
            )
        return path

    def read_file(self, path: str, what: str) -> bytes:
        """A manifest or COCO file: allowed, regular, at most ``max_file_bytes``."""
        return read_regular_file(self.local_path(path), self.max_file_bytes, what, InvalidManifest)


CLI_ACCESS = SourceAccess()


def read_regular_file(
    path: str, max_bytes: int, what: str, too_large: type[InvalidInput] = InvalidInput
) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them. A folder, FIFO, device or
    socket is refused before it is read (opened without blocking, so a FIFO never hangs the caller), and
    no more than ``max_bytes + 1`` bytes are ever read, so an endless file ends too."""
    try:
        _check_regular(os.stat(path).st_mode, path, what)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"{what} {path!r} does not exist") from None
    except OSError as e:
        raise InvalidInput(f"cannot read {what} {path!r}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        _check_regular(os.fstat(fd).st_mode, path, what)  # swapped since the stat
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise too_large(f"{what} {path!r} is larger than the limit of {max_bytes:,} bytes")
    return data


def _check_regular(mode: int, path: str, what: str) -> None:
    if stat.S_ISDIR(mode):
        raise InvalidInput(f"{what} {path!r} is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise InvalidInput(f"{what} {path!r} is not a regular file", code="ERROR_INVALID_SOURCE_REF")


# --- sources -------------------------------------------------------------------------------------------

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def folder_candidates(
    root: str | os.PathLike[str], groups_from_folders: bool = False, access: SourceAccess = CLI_ACCESS
) -> Iterator[Candidate | ImportIssue]:
    """Images under ``root``: each image is labelled with the name of its innermost folder (Custom Labels'
    automatic labelling); images directly in ``root`` are unlabelled. Hidden files are ignored. With
    ``groups_from_folders`` the innermost folder is the image's group and the one above it its label
    (``<root>/…/<label>/<group>/<file>``). Each image must be readable by ``access``."""
    base = access.local_path(os.fspath(root))
    if not os.path.isdir(base):
        raise NotFound(f"folder {base!r} does not exist")
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, base).replace(os.sep, "/")
            yield _folder_candidate(rel, rel.split("/"), file_loader(path, access), groups_from_folders)


def bucket_folder_candidates(
    svc: Services, uri: str, groups_from_folders: bool = False
) -> Iterator[Candidate | ImportIssue]:
    """Like folder_candidates, for a bucket prefix ``s3://bucket/prefix/``."""
    bucket, prefix = parse_s3_prefix(uri)
    for obj in svc.buckets.list_objects(bucket, prefix):
        rel = obj.key[len(prefix) :]
        if not rel.lower().endswith(IMAGE_SUFFIXES) or any(p.startswith(".") for p in rel.split("/")):
            continue
        uri_obj = f"s3://{bucket}/{obj.key}"
        loader = _bucket_loader(svc, bucket, obj.key)
        yield _folder_candidate(uri_obj, rel.split("/"), loader, groups_from_folders, source_ref=uri_obj)


def _folder_candidate(
    ref: str,
    parts: Sequence[str],
    load: Callable[[], bytes],
    groups_from_folders: bool,
    source_ref: str | None = None,
) -> Candidate | ImportIssue:
    """The candidate for a file at ``parts`` (its path below the import root, split at '/')."""
    if len(parts) < 2:
        return Candidate(ref, source_ref or ref, load, kind="unlabeled")
    if not groups_from_folders:
        return Candidate(ref, source_ref or ref, load, (parts[-2].strip(),), kind="classification")
    if len(parts) < 3:
        return ImportIssue(
            ref,
            "ERROR_MISSING_GROUP_FOLDER",
            f"the image is directly in the label folder {parts[-2]!r}; with groups from folders each "
            "image must be in a group folder inside its label folder (<label>/<group>/<file>)",
        )
    try:
        group = check_group(parts[-2])
    except InvalidInput as e:
        return ImportIssue(ref, "ERROR_INVALID_GROUP", f"group folder {parts[-2]!r}: {e}")
    return Candidate(ref, source_ref or ref, load, (parts[-3].strip(),), kind="classification", group=group)


def file_loader(path: str, access: SourceAccess = CLI_ACCESS) -> Callable[[], bytes]:
    """Reads the image at ``path`` (when ``access`` allows it; a link may lead anywhere) within the
    training byte limit."""

    def load() -> bytes:
        return read_regular_file(
            access.local_path(path), TRAINING_LIMITS.max_bytes, "the file", ImageTooLarge
        )

    return load


def _bucket_loader(svc: Services, bucket: str, key: str) -> Callable[[], bytes]:
    # check_image refuses what is over the limit; reading stops just past it
    return lambda: svc.buckets.get(bucket, key, max_bytes=TRAINING_LIMITS.max_bytes)


def manifest_candidates(
    svc: Services, parsed: Iterable[ManifestLine | ImportIssue]
) -> Iterator[Candidate | ImportIssue]:
    """Turn parsed manifest lines into candidates whose images are read from the buckets."""
    for item in parsed:
        if isinstance(item, ImportIssue):
            yield item
            continue
        ref = parse_s3_uri(item.source_ref)
        yield Candidate(
            f"line {item.line_no} ({item.source_ref})",
            item.source_ref,
            _bucket_loader(svc, ref.bucket, ref.key),
            item.labels,
            item.boxes,
            item.kind,
            item.group,
            item.text or None,
        )


def upload_candidate(data: bytes, name: str, labels: Sequence[str], boxes: Sequence[PixelBox]) -> Candidate:
    kind = "detection" if boxes else ("classification" if labels else "unlabeled")
    return Candidate(name, f"upload:{name}", lambda: data, tuple(labels), tuple(boxes), kind)


def too_many_invalid(report: ImportReport, total_lines: int, fraction: float) -> bool:
    """Custom Labels fails a manifest whose invalid lines exceed ``fraction`` of all lines."""
    return total_lines > 0 and report.failed > math.floor(fraction * total_lines)
