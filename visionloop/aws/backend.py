"""The Rekognition backend (moto's models.py): Rekognition's semantics over the core's use cases. It
resolves ARNs, applies the rules the AWS API adds (ResourceInUse for duplicates and busy resources, a
dataset's status, tags) and returns views that shapes.py serializes. It knows nothing of HTTP or JSON."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace

from visionloop.aws import arns, version_manifests
from visionloop.aws.datasets import DatasetsBackend, DatasetView
from visionloop.aws.exceptions import InvalidParameterException, ResourceInUseException
from visionloop.aws.images import missing_object
from visionloop.aws.metadata import Metadata, VersionExtras
from visionloop.aws.pagination import Page
from visionloop.aws.resources import Resources
from visionloop.aws.version_manifests import VersionManifests
from visionloop.core import entries, ids, projects, serving, training
from visionloop.core.analyzing import Analysis
from visionloop.core.detections import DetectionSource
from visionloop.core.entities import DatasetType, ModelVersion, Prediction, Project, TaskType
from visionloop.core.keys import ObjectRef
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, InvalidKey, ObjectNotFound, VisionloopError

log = logging.getLogger("visionloop.aws")


@dataclass(frozen=True)
class ProjectView:
    arn: str
    project: Project
    datasets: list[DatasetView]


@dataclass(frozen=True)
class SummaryRef:
    bucket: str
    key: str


@dataclass(frozen=True)
class VersionView:
    arn: str
    version: ModelVersion
    extras: VersionExtras | None
    summary: SummaryRef | None
    manifests: VersionManifests | None = None  # a trained version's (version_manifests.py)


class RekognitionBackend(DatasetsBackend):
    def __init__(self, svc: Services, region: str, account: str, srv: serving.Serving) -> None:
        super().__init__(svc, Resources(svc, region, account), Metadata(svc.store))
        self.serving = srv  # the server's inference host and serving policy
        self.analysis: Analysis | None = None  # the pretrained analysers (set by the endpoint)

    # --- projects ------------------------------------------------------------------------------------

    def create_project(self, name: str, tags: dict[str, str]) -> str:
        try:
            project = projects.create_project(self.svc, name, TaskType.CLASSIFICATION)
        except AlreadyExists as e:
            raise ResourceInUseException(e.message) from None
        arn = self.res.project_arn(project)
        self.meta.add_tags(arn, tags)
        return arn

    def describe_projects(
        self, names: Sequence[str] | None, page: Page
    ) -> tuple[list[ProjectView], str | None]:
        found = projects.list_projects(self.svc)
        if names is not None:
            found = [p for p in found if p.name in names]
        chunk, token = page.slice(found)
        return [self._project_view(p) for p in chunk], token

    def _project_view(self, p: Project) -> ProjectView:
        datasets = [self.dataset_view(p, d) for d in projects.list_datasets(self.svc, p)]
        return ProjectView(self.res.project_arn(p), p, datasets)

    def delete_project(self, arn: str) -> str:
        project = self.res.project(arn)
        if projects.list_versions(self.svc, project):
            raise ResourceInUseException(
                f"The project {arn} has model versions; delete them with DeleteProjectVersion first."
            )
        datasets = projects.list_datasets(self.svc, project)
        projects.delete_project(self.svc, project.name)  # tags are forgotten only once it is gone
        for d in datasets:
            self.meta.forget(self.res.dataset_arn(project, d))
        self.meta.forget(arn)
        return "DELETING"

    # --- model versions ------------------------------------------------------------------------------

    def create_project_version(
        self, project_arn: str, name: str, extras: VersionExtras, tags: dict[str, str]
    ) -> str:
        project = self.res.project(project_arn)
        if any(v.name == name for v in projects.list_versions(self.svc, project)):
            raise ResourceInUseException(f"The project already has a model version named {name!r}.")
        if projects.find_dataset(self.svc, project, DatasetType.TRAIN) is None:
            raise InvalidParameterException(
                f"The project {project_arn} has no TRAIN dataset; create one with CreateDataset."
            )
        test_was_empty = self._test_entries(project) == 0
        try:
            version, _job = training.request_training(
                self.svc, project.name, training.TrainingOptions(version_name=name)
            )
        except AlreadyExists as e:
            raise ResourceInUseException(e.message) from None
        arn = self.res.version_arn(project, version)
        auto_create = test_was_empty and self._test_entries(project) > 0  # split off TRAIN just now
        self.meta.set_version_extras(arn, self._with_manifests(project, version, extras, auto_create))
        self.meta.add_tags(arn, tags)
        return arn

    def _test_entries(self, project: Project) -> int:
        test = projects.find_dataset(self.svc, project, DatasetType.TEST)
        return 0 if test is None else entries.image_count(self.svc, test)

    def _with_manifests(
        self, project: Project, version: ModelVersion, extras: VersionExtras, auto_create: bool
    ) -> VersionExtras:
        """``extras`` once the version's manifests are written from its snapshot; unchanged (and the
        version described without them) when the OutputConfig bucket cannot take them."""
        where = version_manifests.locate(
            extras.bucket, extras.prefix, project.name, version.name, auto_create
        )
        try:
            version_manifests.write_manifests(self.svc, project, version, where)
        except VisionloopError as e:
            log.warning("cannot write the manifests of %s to s3://%s: %s", version.name, extras.bucket, e)
            return extras
        return replace(extras, manifests=True, auto_create=auto_create)

    def describe_project_versions(
        self, project_arn: str, names: Sequence[str] | None, page: Page
    ) -> tuple[list[VersionView], str | None]:
        project = self.res.project(project_arn)
        versions = projects.list_versions(self.svc, project)[::-1]  # newest first, as AWS lists them
        if names is not None:
            versions = [v for v in versions if v.name in names]
        chunk, token = page.slice(versions)
        return [self._version_view(project, v) for v in chunk], token

    def _version_view(self, project: Project, v: ModelVersion) -> VersionView:
        arn = self.res.version_arn(project, v)
        extras = self.meta.version_extras(arn)
        manifests = None
        if extras is not None and extras.manifests and v.artifact_key is not None:
            manifests = version_manifests.locate(
                extras.bucket, extras.prefix, project.name, v.name, extras.auto_create
            )
        return VersionView(arn, v, extras, self._summary(project, v, extras), manifests)

    def _summary(self, project: Project, v: ModelVersion, extras: VersionExtras | None) -> SummaryRef | None:
        """Where the evaluation summary lies in the OutputConfig bucket. It is copied there from the model
        artifact the first time a trained version is described (the worker knows no OutputConfig)."""
        if extras is None or v.artifact_key is None or v.f1 is None:
            return None
        name = training.summary_name(project.name, v.name)
        ref = SummaryRef(extras.bucket, f"{extras.prefix}/{name}" if extras.prefix else name)
        try:
            if not self.svc.buckets.exists(ref.bucket, ref.key):
                data = self.svc.store.get(training.MODELS_BUCKET, f"{v.artifact_key}/{name}")
                self.svc.buckets.create_bucket(ref.bucket)
                self.svc.buckets.put(ref.bucket, ref.key, data)
        except VisionloopError as e:
            log.warning("cannot copy the evaluation summary to s3://%s/%s: %s", ref.bucket, ref.key, e)
            return None
        return ref

    def delete_project_version(self, arn: str) -> str:
        """Refused (ResourceInUseException) while the version trains, starts, runs or stops."""
        project, version = self.res.version(arn)
        serving.delete_version(self.svc, self.serving, project.name, version.name)
        self.meta.forget(arn)
        return "DELETING"

    # --- serving -------------------------------------------------------------------------------------

    def start_project_version(self, arn: str, min_units: int, max_units: int | None) -> str:
        project, version = self.res.version(arn)
        started = serving.start_version(
            self.svc, self.serving, project.name, version.name, min_units, max_units
        )
        return started.status.value

    def stop_project_version(self, arn: str) -> str:
        project, version = self.res.version(arn)
        return serving.stop_version(self.svc, self.serving, project.name, version.name).status.value

    def detect_custom_labels(
        self,
        arn: str,
        image: bytes | ObjectRef,
        min_confidence: float | None,
        max_results: int | None,
    ) -> Future[list[Prediction]]:
        """Queue the image on the version's inference units; the future gives the labels."""
        project, version = self._served_names(arn)
        source = image if isinstance(image, bytes) else serving.StoredImage(image.bucket, image.key)
        try:
            return serving.submit_detect(
                self.svc,
                self.serving,
                project,
                version,
                source,
                min_confidence,
                max_results,
                source=DetectionSource.AWS,
            )
        except (ObjectNotFound, InvalidKey):  # the image's object (a missing version is a plain NotFound)
            if isinstance(image, bytes):
                raise
            raise missing_object(image) from None

    def _served_names(self, text: str) -> tuple[str, str]:
        """The project and version names of a version ARN. A RUNNING version that detection saw in the
        last second is trusted without reading it again (core.serving keeps it for that)."""
        arn = arns.parse(text, "version")
        seen = self.serving.running_version(arn.project, arn.name)
        if (
            seen is None
            or ids.epoch_ms(seen.created_at) != arn.ms
            or (arn.region, arn.account) != (self.res.region, self.res.account)
        ):
            project, version = self.res.version(text)
            return project.name, version.name
        return arn.project, arn.name

    # --- tags ----------------------------------------------------------------------------------------

    def tag_resource(self, arn: str, tags: dict[str, str]) -> None:
        self.meta.add_tags(self.res.existing(arn), tags)

    def untag_resource(self, arn: str, keys: Sequence[str]) -> None:
        self.meta.remove_tags(self.res.existing(arn), keys)

    def list_tags_for_resource(self, arn: str) -> dict[str, str]:
        return self.meta.tags(self.res.existing(arn))
