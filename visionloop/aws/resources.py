"""From ARNs to the core's records and back. The trailing number of an ARN is the resource's creation
time in milliseconds, so an ARN of a deleted resource never finds a newer one of the same name."""

from __future__ import annotations

from dataclasses import dataclass

from visionloop.aws import arns
from visionloop.aws.exceptions import ResourceNotFoundException
from visionloop.core import ids, projects, training
from visionloop.core.entities import Dataset, DatasetType, ModelVersion, Project
from visionloop.core.services import Services
from visionloop.errors import NotFound


@dataclass(frozen=True)
class Resources:
    svc: Services
    region: str
    account: str

    # minting

    def project_arn(self, p: Project) -> str:
        return ids.project_arn(self.region, self.account, p.name, p.created_at)

    def dataset_arn(self, p: Project, d: Dataset) -> str:
        return ids.dataset_arn(self.region, self.account, p.name, d.type.value, d.created_at)

    def version_arn(self, p: Project, v: ModelVersion) -> str:
        return ids.version_arn(self.region, self.account, p.name, v.name, v.created_at)

    # resolving

    def project(self, text: str) -> Project:
        arn = arns.parse(text, "project")
        project = self._project(arn)
        if ids.epoch_ms(project.created_at) != arn.ms:
            raise _missing(arn)
        return project

    def dataset(self, text: str) -> tuple[Project, Dataset]:
        arn = arns.parse(text, "dataset")
        project = self._project(arn)
        dataset = projects.find_dataset(self.svc, project, DatasetType(arn.name))
        if dataset is None or ids.epoch_ms(dataset.created_at) != arn.ms:
            raise _missing(arn)
        return project, dataset

    def version(self, text: str) -> tuple[Project, ModelVersion]:
        arn = arns.parse(text, "version")
        project = self._project(arn)
        try:
            version = training.get_version(self.svc, project.name, arn.name)
        except NotFound:
            raise _missing(arn) from None
        if ids.epoch_ms(version.created_at) != arn.ms:
            raise _missing(arn)
        return project, version

    def existing(self, text: str) -> str:
        """The ARN of an existing project, model version or dataset (the taggable resources)."""
        kind = arns.parse_any(text).kind
        if kind == "project":
            self.project(text)
        elif kind == "dataset":
            self.dataset(text)
        else:
            self.version(text)
        return text

    def _project(self, arn: arns.Arn) -> Project:
        if arn.region != self.region or arn.account != self.account:
            raise _missing(arn)
        try:
            return projects.get_project(self.svc, arn.project)
        except NotFound:
            raise _missing(arn) from None


def _missing(arn: arns.Arn) -> ResourceNotFoundException:
    what = {"project": "project", "dataset": "dataset", "version": "model version"}[arn.kind]
    return ResourceNotFoundException(f"The {what} {arn.text} does not exist.")
