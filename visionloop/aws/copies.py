"""CopyProjectVersion over core.copies, and what DescribeProjectVersions says of a copy.

The copy is made before the call answers (files are copied within this server's store), so a client that
polls DescribeProjectVersions until ``COPYING_COMPLETED``, as the AWS documentation says to, finds it at
once. The source's training and testing manifests (TrainingDataResult, TestingDataResult,
ManifestSummary) are copied to the copy's OutputConfig. A copy reports AWS's copy statuses where a
trained version reports training ones (COPYING_IN_PROGRESS for TRAINING_IN_PROGRESS, COPYING_COMPLETED
for TRAINING_COMPLETED), its SourceProjectVersionArn, and then the serving statuses (STARTING, RUNNING
...) like any version."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from visionloop.aws import version_manifests
from visionloop.aws.backend import RekognitionBackend, VersionView
from visionloop.aws.exceptions import AccessDeniedException, InvalidParameterException, ResourceInUseException
from visionloop.aws.metadata import VersionExtras
from visionloop.aws.params import NAME, Params
from visionloop.core import copies, project_policies
from visionloop.core.policies import CopyDenied
from visionloop.errors import AlreadyExists, VisionloopError

log = logging.getLogger("visionloop.aws")
Json = dict[str, Any]
COPY_STATUS = {
    "TRAINING_IN_PROGRESS": "COPYING_IN_PROGRESS",
    "TRAINING_COMPLETED": "COPYING_COMPLETED",
    "TRAINING_FAILED": "COPYING_FAILED",
}


def copy_project_version(backend: RekognitionBackend, p: Params, output: tuple[str, str]) -> Json:
    """Copy SourceProjectVersionArn (a version of SourceProjectArn) into DestinationProjectArn."""
    source_project_arn = p.arn("SourceProjectArn")
    source_version_arn = p.arn("SourceProjectVersionArn")
    destination_arn = p.arn("DestinationProjectArn")
    name = p.required_string("VersionName", max_len=255, pattern=NAME)
    p.string("KmsKeyId", min_len=1, max_len=2048)  # accepted; the local store does not encrypt
    tags = p.tags()
    source = backend.res.project(source_project_arn)
    project, version = backend.res.version(source_version_arn)
    if project.id != source.id:
        raise InvalidParameterException(
            f"SourceProjectVersionArn {source_version_arn} is not a model version of {source_project_arn}."
        )
    destination = backend.res.project(destination_arn)
    request = copies.CopyRequest(
        source.name, version.name, destination.name, name, backend.res.version_arn(source, version)
    )
    try:
        copy = copies.copy_version(backend.svc, request)
    except AlreadyExists as e:
        raise ResourceInUseException(e.message) from None
    except CopyDenied as e:
        raise AccessDeniedException(e.message) from None
    arn = backend.res.version_arn(destination, copy)
    extras = _with_manifests(backend, request, VersionExtras(*output))
    backend.meta.set_version_extras(arn, extras)
    backend.meta.add_tags(arn, tags)
    return {"ProjectVersionArn": arn}


def _with_manifests(
    backend: RekognitionBackend, req: copies.CopyRequest, extras: VersionExtras
) -> VersionExtras:
    """``extras`` with the source's training and testing manifests (TrainingDataResult ...) copied to the
    copy's OutputConfig; unchanged when the source has none or they cannot be copied."""
    source = backend.meta.version_extras(req.source_arn)
    if source is None or not source.manifests:
        return extras
    auto = source.auto_create
    src = version_manifests.locate(source.bucket, source.prefix, req.source_project, req.source_version, auto)
    dst = version_manifests.locate(
        extras.bucket, extras.prefix, req.destination_project, req.version_name, auto
    )
    buckets = backend.svc.buckets
    try:
        buckets.create_bucket(dst.bucket)
        for old, new in zip(_keys(src), _keys(dst), strict=True):
            buckets.put(dst.bucket, new, buckets.get(src.bucket, old))
    except VisionloopError as e:
        log.warning("cannot copy the manifests of %s to s3://%s: %s", req.source_arn, dst.bucket, e)
        return extras
    return replace(extras, manifests=True, auto_create=auto)


def _keys(m: version_manifests.VersionManifests) -> list[str]:
    sides = (m.training, m.testing)
    return [k for side in sides for k in (side.input, side.output, side.validation)] + [m.summary]


def describe_copies(backend: RekognitionBackend, views: Sequence[VersionView], out: list[Json]) -> list[Json]:
    """``out`` (the descriptions of ``views``) with each copy's source and copy status."""
    sources = project_policies.copy_sources(backend.svc, [v.version for v in views])
    for view, description in zip(views, out, strict=True):
        source = sources.get(view.version.id)
        if source is not None:
            description["SourceProjectVersionArn"] = source
            description["Status"] = COPY_STATUS.get(description["Status"], description["Status"])
    return out
