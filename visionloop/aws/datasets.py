"""The dataset half of the Rekognition backend. Imports run synchronously inside the request; meanwhile
the dataset is CREATE_IN_PROGRESS (its status is kept in the database: CREATING until the entries are
committed), and a server that stops during an import leaves it CREATE_FAILED at its next start
(core.entries.recover_interrupted_datasets). What AWS reports later as CREATE_FAILED (a manifest with
too many invalid lines) is recorded as the dataset's status, and the call that created it still succeeds.
CreateDataset on a project whose dataset of that type is CREATE_FAILED replaces the failed one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from visionloop.aws.entry_changes import check_changes
from visionloop.aws.exceptions import (
    InvalidParameterException,
    InvalidS3ObjectException,
    ResourceAlreadyExistsException,
)
from visionloop.aws.metadata import DatasetState, Metadata
from visionloop.aws.pagination import Page
from visionloop.aws.resources import Resources
from visionloop.core import entries, projects
from visionloop.core.entities import Dataset, DatasetStatus, DatasetType, ImportReport, Project
from visionloop.core.keys import ObjectRef, check_bucket, check_key
from visionloop.core.services import Services
from visionloop.errors import AlreadyExists, InvalidInput, InvalidKey, NotFound, VisionloopError


@dataclass(frozen=True)
class DatasetView:
    arn: str
    dataset: Dataset
    state: DatasetState
    counts: entries.EntryCounts | None = None


class DatasetsBackend:
    def __init__(self, svc: Services, res: Resources, meta: Metadata) -> None:
        self.svc, self.res, self.meta = svc, res, meta

    def dataset_view(self, project: Project, dataset: Dataset, counts: bool = False) -> DatasetView:
        arn = self.res.dataset_arn(project, dataset)
        state = self.meta.dataset_state(arn)
        if dataset.status is DatasetStatus.CREATING:
            state = DatasetState("CREATE_IN_PROGRESS", "The dataset is being created.", "SUCCESS", 0.0)
        elif dataset.status is DatasetStatus.FAILED and (state is None or state.status != "CREATE_FAILED"):
            message = dataset.status_message or "The dataset could not be created."
            state = DatasetState("CREATE_FAILED", message, "SERVICE_ERROR", 0.0)
        elif state is None:
            state = DatasetState("CREATE_COMPLETE", "The dataset is ready.", "SUCCESS", 0.0)
        if dataset.updated_at.timestamp() > state.updated:
            state = DatasetState(state.status, state.message, state.code, dataset.updated_at.timestamp())
        return DatasetView(arn, dataset, state, entries.entry_counts(self.svc, dataset) if counts else None)

    def _record(self, arn: str, status: str, message: str, code: str = "SUCCESS") -> None:
        self.meta.set_dataset_state(
            arn, DatasetState(status, message, code, self.svc.clock.now().timestamp())
        )

    # --- CreateDataset -------------------------------------------------------------------------------

    def create_dataset(
        self,
        project_arn: str,
        dataset_type: DatasetType,
        manifest: ObjectRef | None,
        source_arn: str | None,
        tags: dict[str, str],
    ) -> str:
        project = self.res.project(project_arn)
        existing = projects.find_dataset(self.svc, project, dataset_type)
        if existing is not None and existing.status is not DatasetStatus.FAILED:
            raise ResourceAlreadyExistsException(
                f"The project {project_arn} already has a {dataset_type.value.upper()} dataset."
            )
        source = self.res.dataset(source_arn)[1] if source_arn else None
        if manifest is not None:
            self._check_object(manifest)
        if existing is not None:  # replaced by the new one (core.entries.create_dataset)
            self.meta.forget(self.res.dataset_arn(project, existing))
        try:
            dataset = entries.create_dataset(self.svc, project, dataset_type, filling=True)
        except AlreadyExists as e:
            raise ResourceAlreadyExistsException(e.message) from None
        arn = self.res.dataset_arn(project, dataset)
        self.meta.add_tags(arn, tags)
        try:
            report = self._fill(project, dataset, manifest, source)
        except VisionloopError as e:
            code = "CLIENT_ERROR" if isinstance(e, InvalidInput | NotFound) else "SERVICE_ERROR"
            self._record(arn, "CREATE_FAILED", e.message, code)
            entries.finish_creation(self.svc, dataset, failed=e.message)
            return arn
        except Exception as e:  # a bug: the dataset must not stay CREATING while the server runs on
            entries.finish_creation(self.svc, dataset, failed=f"internal error: {type(e).__name__}")
            raise
        self._record(arn, "CREATE_COMPLETE", _outcome("The dataset was created", report))
        entries.finish_creation(self.svc, dataset)  # last: until here a restart finds it CREATING
        return arn

    def _fill(
        self, project: Project, dataset: Dataset, manifest: ObjectRef | None, source: Dataset | None
    ) -> ImportReport:
        if manifest is not None:
            return entries.fill_from_manifest(self.svc, project, dataset.type, manifest.uri())
        if source is not None:
            return entries.copy_entries(self.svc, project, dataset, source)
        return ImportReport()

    def _check_object(self, ref: ObjectRef) -> None:
        try:
            found = self.svc.buckets.exists(check_bucket(ref.bucket), check_key(ref.key))
        except InvalidKey as e:
            raise InvalidS3ObjectException(f"Unable to get object s3://{ref.bucket}/{ref.key}: {e}") from None
        if not found:
            raise InvalidS3ObjectException(
                f"Unable to get object metadata from S3 for s3://{ref.bucket}/{ref.key}. "
                "Check object key, region and/or access permissions."
            )

    # --- reading -------------------------------------------------------------------------------------

    def describe_dataset(self, arn: str) -> DatasetView:
        project, dataset = self.res.dataset(arn)
        return self.dataset_view(project, dataset, counts=True)

    def list_dataset_entries(
        self, arn: str, query: entries.EntryQuery, page: Page
    ) -> tuple[list[str], str | None]:
        project, dataset = self.res.dataset(arn)
        lines = entries.entry_lines(self.svc, project, dataset, query, page.offset, page.limit + 1)
        return lines[: page.limit], page.token_after(min(len(lines), page.limit), len(lines) > page.limit)

    def list_dataset_labels(self, arn: str, page: Page) -> tuple[list[entries.LabelStat], str | None]:
        _project, dataset = self.res.dataset(arn)
        return page.slice(entries.label_stats(self.svc, dataset))

    # --- changing ------------------------------------------------------------------------------------

    def update_dataset_entries(self, arn: str, ground_truth: bytes) -> None:
        project, dataset = self.res.dataset(arn)
        check_changes(self.svc, project, ground_truth)  # a line that cannot be used changes nothing
        report = entries.update_entries(self.svc, project, dataset, ground_truth)
        outcome = _outcome(f"The dataset was updated: {report.updated} entries relabelled", report.added)
        self._record(arn, "UPDATE_COMPLETE", outcome)

    def distribute_dataset_entries(self, arns: Sequence[str]) -> None:
        if len(arns) != 2:
            raise InvalidParameterException(
                "Give exactly two datasets: the TRAIN and the TEST dataset of a project."
            )
        (p1, d1), (p2, d2) = (self.res.dataset(a) for a in arns)
        if p1.id != p2.id or d1.type is d2.type:
            raise InvalidParameterException("Give the TRAIN and the TEST dataset of the same project.")
        train, test = (d1, d2) if d1.type is DatasetType.TRAIN else (d2, d1)
        record = entries.distribute_entries(self.svc, p1, train, test)
        message = (
            f"Entries distributed: {record.train_count} in TRAIN, {record.test_count} in TEST, "
            f"keeping {record.n_groups} groups of similar photos together."
        )
        for d in (train, test):
            self._record(self.res.dataset_arn(p1, d), "UPDATE_COMPLETE", message)

    def delete_dataset(self, arn: str) -> None:
        _project, dataset = self.res.dataset(arn)
        entries.delete_dataset(self.svc, dataset)
        self.meta.forget(arn)


def _outcome(done: str, report: ImportReport) -> str:
    text = f"{done}: {report.imported} entries added"
    if report.skipped:
        text += f", {report.skipped} duplicates skipped"
    if report.failed:
        first = next((i for i in report.issues if i.code not in ("DUPLICATE", "MERGED")), report.issues[0])
        text += f", {report.failed} rejected (first: {first.ref}: {first.code}: {first.message})"
    return text + "."
