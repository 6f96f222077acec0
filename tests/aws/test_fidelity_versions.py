"""What boto3 code reads back about versions, as AWS answers it (issue 19): model version numbers of the
form AWS answers ("7.0"), while the native API keeps the descriptive name of the model."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.aws.conftest import Server

AWS_VERSION = re.compile(r"^\d+\.\d+$")


def test_face_model_versions_are_aws_shaped(rek: Any, server: Server) -> None:
    name = server.name("versions")
    made = rek.create_collection(CollectionId=name)
    described = rek.describe_collection(CollectionId=name)
    listed = rek.list_collections()
    assert made["FaceModelVersion"] == described["FaceModelVersion"] == "7.0"
    assert AWS_VERSION.match(made["FaceModelVersion"])
    assert set(listed["FaceModelVersions"]) == {"7.0"}
    native = httpx.get(f"{server.url}/api/v1/collections/{name}").json()
    assert native["face_model_version"].startswith("visionloop-faces-")  # the native API names the model
    rek.delete_collection(CollectionId=name)
