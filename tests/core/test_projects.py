"""Project use cases over a real SQLite file: the name rule and the one delete rule every interface
(native API, console, AWS API, CLI) goes through."""

from __future__ import annotations

import pytest

from tests.factories import make_project
from visionloop.core import projects
from visionloop.core.entities import ModelVersion, VersionStatus
from visionloop.core.services import Services
from visionloop.errors import Conflict, InvalidInput, NotFound


def version_in(svc: Services, project: str, status: VersionStatus, name: str = "v1") -> ModelVersion:
    """A model version row in ``status`` (what training or serving would have left)."""
    p = svc.repo.get_project(project)
    v = svc.repo.create_version(p.id, name, "fake", "classification", "snapshot", svc.clock.now())
    return svc.repo.update_version(v.id, status=status)


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_names_are_refused(services: Services, name: str) -> None:
    with pytest.raises(InvalidInput, match="reserved"):
        projects.create_project(services, name)
    assert services.repo.list_projects() == []
    assert projects.create_project(services, "v1.2").name == "v1.2"  # dots inside a name stay allowed
    assert projects.create_project(services, "...").name == "..."


@pytest.mark.parametrize("status", projects.IN_USE)
def test_delete_is_refused_while_a_version_is_in_use(services: Services, status: VersionStatus) -> None:
    make_project(services, "logos")
    version = version_in(services, "logos", status)
    with pytest.raises(Conflict, match=f"model version v1 of project logos is {status.value}"):
        projects.delete_project(services, "logos")
    assert services.repo.get_project("logos")  # nothing lost
    assert services.repo.get_version_by_id(version.id).status is status
    services.repo.update_version(version.id, status=VersionStatus.STOPPED)
    projects.delete_project(services, "logos")
    with pytest.raises(NotFound):
        projects.get_project(services, "logos")


def test_delete_with_versions_at_rest(services: Services) -> None:
    make_project(services, "logos")
    for i, status in enumerate(set(VersionStatus) - set(projects.IN_USE)):
        version_in(services, "logos", status, f"v{i}")
    projects.delete_project(services, "logos")
    assert services.repo.list_projects() == []
