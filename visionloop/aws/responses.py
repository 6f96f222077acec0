"""One method per supported Rekognition operation, named after it in snake_case (moto's responses.py):
parse and check the parameters, call the backend once, serialize. Adding an operation is adding a method;
the dispatcher, the docs' operations table and its test pick it up from this class."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from visionloop.aws import analysis, collections, copies, faces, policies, shapes
from visionloop.aws.api_operations import REKOGNITION_OPERATIONS
from visionloop.aws.backend import RekognitionBackend
from visionloop.aws.exceptions import (
    AccessDeniedException,
    AwsError,
    InvalidParameterException,
    UnknownOperationException,
    from_domain,
)
from visionloop.aws.images import CUSTOM_LABELS_MAX_BYTES, image_member
from visionloop.aws.metadata import VersionExtras
from visionloop.aws.pagination import page
from visionloop.aws.params import BUCKET, NAME, Params, s3_object
from visionloop.core.entities import DatasetType, Prediction
from visionloop.core.entries import EntryQuery
from visionloop.core.keys import check_bucket, check_key
from visionloop.errors import VisionloopError

Json = dict[str, Any]
T = TypeVar("T")
DESCRIPTION = re.compile(r"^[a-zA-Z0-9\-_. ()':,;?]+$")
NONBLANK = re.compile(r".*\S.*", re.DOTALL)
FEATURES = ("CONTENT_MODERATION", "CUSTOM_LABELS")
MAX_CHANGES_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Deferred(Generic[T]):
    """An answer that is ready when ``future`` is: the endpoint awaits it without holding a thread (a
    detection waits on the inference units), then serializes its result with ``finish``."""

    future: Future[T]
    finish: Callable[[T], Json]


class RekognitionResponse:
    def __init__(self, backend: RekognitionBackend, params: Params) -> None:
        self.backend = backend
        self.params = params

    # --- projects ------------------------------------------------------------------------------------

    def create_project(self) -> Json:
        """Creates a Custom Labels project; the first labelled data it receives decides its task."""
        p = self.params
        name = p.required_string("ProjectName", max_len=255, pattern=NAME)
        if p.enum("Feature", FEATURES) == "CONTENT_MODERATION":
            raise InvalidParameterException("Only CUSTOM_LABELS projects are supported; adapters are not.")
        if p.enum("AutoUpdate", ("ENABLED", "DISABLED")) == "ENABLED":
            raise InvalidParameterException(
                "AutoUpdate applies to adapter projects, which are not supported."
            )
        return {"ProjectArn": self.backend.create_project(name, p.tags())}

    def describe_projects(self) -> Json:
        """Lists projects with their datasets; ProjectNames and Features filters, pagination."""
        p = self.params
        names = p.strings("ProjectNames", min_items=1, max_items=10, max_len=255, pattern=NAME)
        features = p.strings("Features", min_items=1, max_items=2)
        for f in features or ():
            if f not in FEATURES:
                raise InvalidParameterException(
                    f"Unknown feature {f!r}; use CUSTOM_LABELS or CONTENT_MODERATION."
                )
        if features is not None and "CUSTOM_LABELS" not in features:
            names = []  # every project here is a Custom Labels project
        pg = page(p, "DescribeProjects", {"names": names})
        views, token = self.backend.describe_projects(names, pg)
        return _paged("ProjectDescriptions", [shapes.project_description(v) for v in views], token)

    def delete_project(self) -> Json:
        """Deletes a project and its datasets; ResourceInUseException while it has model versions."""
        return {"Status": self.backend.delete_project(self.params.arn("ProjectArn"))}

    # --- datasets ------------------------------------------------------------------------------------

    def create_dataset(self) -> Json:
        """Creates the TRAIN or TEST dataset: empty, from a Ground Truth manifest, or a copy."""
        p = self.params
        project_arn = p.arn("ProjectArn")
        dataset_type = DatasetType(str(p.enum("DatasetType", ("TRAIN", "TEST"), required=True)).lower())
        manifest, source_arn = None, None
        source = p.struct("DatasetSource")
        if source is not None:
            ground_truth = source.struct("GroundTruthManifest")
            source_arn = source.optional_arn("DatasetArn")
            if (ground_truth is None) == (source_arn is None):
                raise InvalidParameterException(
                    "DatasetSource needs exactly one of GroundTruthManifest and DatasetArn."
                )
            if ground_truth is not None:
                manifest = s3_object(ground_truth.required_struct("S3Object"))
        arn = self.backend.create_dataset(project_arn, dataset_type, manifest, source_arn, p.tags())
        return {"DatasetArn": arn}

    def describe_dataset(self) -> Json:
        """Describes a dataset: status, status message and entry statistics."""
        view = self.backend.describe_dataset(self.params.arn("DatasetArn"))
        return {"DatasetDescription": shapes.dataset_description(view)}

    def list_dataset_entries(self) -> Json:
        """Lists entries as Ground Truth JSON lines, with all four filters and pagination."""
        p = self.params
        arn = p.arn("DatasetArn")
        query = EntryQuery(
            labels=tuple(p.strings("ContainsLabels", min_items=1, max_items=10, max_len=255) or ()),
            labeled=p.boolean("Labeled"),
            source_ref_contains=p.string("SourceRefContains", min_len=1, max_len=2048, pattern=NONBLANK),
            has_errors=p.boolean("HasErrors"),
        )
        pg = page(p, "ListDatasetEntries", {"arn": arn, "query": query.__dict__})
        lines, token = self.backend.list_dataset_entries(arn, query, pg)
        return _paged("DatasetEntries", lines, token)

    def list_dataset_labels(self) -> Json:
        """Lists the labels of a dataset's entries with entry and bounding-box counts."""
        p = self.params
        arn = p.arn("DatasetArn")
        stats, token = self.backend.list_dataset_labels(arn, page(p, "ListDatasetLabels", {"arn": arn}))
        return _paged("DatasetLabelDescriptions", [shapes.label_description(s) for s in stats], token)

    def update_dataset_entries(self) -> Json:
        """Adds or relabels entries from Ground Truth JSON lines, keyed by source-ref."""
        p = self.params
        arn = p.arn("DatasetArn")
        changes = p.required_struct("Changes").blob("GroundTruth", required=True, max_bytes=MAX_CHANGES_BYTES)
        assert changes is not None
        self.backend.update_dataset_entries(arn, changes)
        return {}

    def distribute_dataset_entries(self) -> Json:
        """Moves 20% of the TRAIN entries (stratified by label) into the project's empty TEST dataset."""
        datasets = self.params.structs("Datasets", min_items=2, max_items=2) or []
        self.backend.distribute_dataset_entries([d.arn("Arn") for d in datasets])
        return {}

    def delete_dataset(self) -> Json:
        """Deletes a dataset and its entries."""
        self.backend.delete_dataset(self.params.arn("DatasetArn"))
        return {}

    # --- model versions ------------------------------------------------------------------------------

    def create_project_version(self) -> Json:
        """Trains a model version on the project's datasets; the evaluation summary goes to OutputConfig."""
        p = self.params
        project_arn = p.arn("ProjectArn")
        name = p.required_string("VersionName", max_len=255, pattern=NAME)
        bucket, prefix = _output_config(p)
        description = p.string("VersionDescription", min_len=1, max_len=255, pattern=DESCRIPTION)
        p.string("KmsKeyId", min_len=1, max_len=2048)  # accepted; the local store does not encrypt
        for legacy in ("TrainingData", "TestingData", "FeatureConfig"):
            if p.has(legacy):
                raise InvalidParameterException(
                    f"{legacy} is not supported: create the project's datasets with CreateDataset instead."
                )
        extras = VersionExtras(bucket, prefix, description)
        return {"ProjectVersionArn": self.backend.create_project_version(project_arn, name, extras, p.tags())}

    def describe_project_versions(self) -> Json:
        """Partial: versions newest first, with status and EvaluationResult; manifests not for every one.

        TrainingDataResult, TestingDataResult and ManifestSummary only for versions made by
        CreateProjectVersion or CopyProjectVersion (others have no OutputConfig to write them to)."""
        p = self.params
        project_arn = p.arn("ProjectArn")
        names = p.strings("VersionNames", min_items=1, max_items=10, max_len=255, pattern=NAME)
        pg = page(p, "DescribeProjectVersions", {"arn": project_arn, "names": names})
        views, token = self.backend.describe_project_versions(project_arn, names, pg)
        described = copies.describe_copies(
            self.backend, views, [shapes.version_description(v) for v in views]
        )
        return _paged("ProjectVersionDescriptions", described, token)

    def delete_project_version(self) -> Json:
        """Deletes a model version and its artifact; ResourceInUseException while training or serving."""
        arn = self.params.arn("ProjectVersionArn")
        return {"Status": self.backend.delete_project_version(arn)}

    # --- serving -------------------------------------------------------------------------------------

    def start_project_version(self) -> Json:
        """Starts a model version on MinInferenceUnits units, scaling up to MaxInferenceUnits under load."""
        p = self.params
        arn = p.arn("ProjectVersionArn")
        low = p.required_integer("MinInferenceUnits", lo=1)
        high = p.integer("MaxInferenceUnits", lo=1)
        return {"Status": self.backend.start_project_version(arn, low, high)}

    def stop_project_version(self) -> Json:
        """Stops a running or starting model version; it is STOPPED once its units have exited."""
        return {"Status": self.backend.stop_project_version(self.params.arn("ProjectVersionArn"))}

    def detect_custom_labels(self) -> Deferred[list[Prediction]]:
        """Labels of an image (Bytes up to 4 MB or an S3Object) from a RUNNING model version."""
        p = self.params
        arn = p.arn("ProjectVersionArn")
        max_results = p.integer("MaxResults", lo=0)
        min_confidence = p.number("MinConfidence", lo=0, hi=100)
        image = image_member(p, max_bytes=CUSTOM_LABELS_MAX_BYTES)
        future = self.backend.detect_custom_labels(arn, image, min_confidence, max_results)
        return Deferred(future, shapes.custom_labels)

    # --- pretrained analysis -------------------------------------------------------------------------

    def detect_labels(self) -> Deferred[Any]:
        """Partial: labels (ImageNet-1k, COCO-80) with boxes, parents, categories; image properties."""
        return Deferred(*analysis.detect_labels(self.backend.svc, self.backend.analysis, self.params))

    def detect_text(self) -> Deferred[Any]:
        """Lines and words of text (PP-OCRv4) with geometry; WordFilter and RegionsOfInterest."""
        return Deferred(*analysis.detect_text(self.backend.svc, self.backend.analysis, self.params))

    def detect_moderation_labels(self) -> Deferred[Any]:
        """partial: moderation labels of nudity and swimwear only (docs/moderation.md); HumanLoopConfig works.

        With HumanLoopConfig, an A2I human loop starts when the flow's conditions hold
        (aws/moderation_loops.py); ContentTypes is empty; ProjectVersion (adapters) is refused."""
        b = self.backend
        return Deferred(
            *analysis.detect_moderation_labels(b.svc, b.analysis, self.params, b.res.region, b.res.account)
        )

    # --- faces ---------------------------------------------------------------------------------------

    def detect_faces(self) -> Deferred[Any]:
        """Partial: 100 largest faces, landmarks, pose, quality; ALL: age, gender, eyes, no smile/beard."""
        return Deferred(*faces.detect_faces(self.backend.svc, self.backend.analysis, self.params))

    def compare_faces(self) -> Deferred[Any]:
        """The source image's largest face against the target's faces: FaceMatches and UnmatchedFaces."""
        return Deferred(*faces.compare_faces(self.backend.svc, self.backend.analysis, self.params))

    # --- face collections ----------------------------------------------------------------------------

    def create_collection(self) -> Json:
        """Creates a face collection of the current face model, with tags."""
        return collections.create_collection(self.backend, self.params)

    def describe_collection(self) -> Json:
        """A collection's face and user counts, face model version, ARN and creation time."""
        return collections.describe_collection(self.backend, self.params)

    def list_collections(self) -> Json:
        """Collection ids with their face model versions, paginated (MaxResults up to 4096)."""
        return collections.list_collections(self.backend, self.params)

    def delete_collection(self) -> Json:
        """Deletes a collection with its faces, their vectors and its users."""
        return collections.delete_collection(self.backend, self.params)

    def index_faces(self) -> Deferred[Any]:
        """Stores the image's faces that pass QualityFilter (MaxFaces largest); the others with reasons."""
        return Deferred(*collections.index_faces(self.backend, self.params))

    def list_faces(self) -> Json:
        """A collection's faces, oldest first, filtered by UserId or FaceIds, paginated."""
        return collections.list_faces(self.backend, self.params)

    def delete_faces(self) -> Json:
        """Deletes faces by id; a user's faces and missing ones are listed as unsuccessful."""
        return collections.delete_faces(self.backend, self.params)

    def search_faces(self) -> Json:
        """Faces of the collection like a stored face, above FaceMatchThreshold (exact search)."""
        return collections.search_faces(self.backend, self.params)

    def search_faces_by_image(self) -> Deferred[Any]:
        """Faces of the collection like the image's largest face, above FaceMatchThreshold."""
        return Deferred(*collections.search_faces_by_image(self.backend, self.params))

    def create_user(self) -> Json:
        """Creates a user in a collection (a retry with the same ClientRequestToken succeeds)."""
        return collections.create_user(self.backend, self.params)

    def delete_user(self) -> Json:
        """Deletes a user; its faces stay in the collection, associated with nobody."""
        return collections.delete_user(self.backend, self.params)

    def list_users(self) -> Json:
        """A collection's users with their status (CREATED, or ACTIVE once they hold a face), paginated."""
        return collections.list_users(self.backend, self.params)

    def associate_faces(self) -> Json:
        """Gives faces to a user: up to 100 each, each similar to the user's faces (UserMatchThreshold)."""
        return collections.associate_faces(self.backend, self.params)

    def disassociate_faces(self) -> Json:
        """Takes faces from a user."""
        return collections.disassociate_faces(self.backend, self.params)

    def search_users(self) -> Json:
        """Users like a user or a stored face, by their most similar face, above UserMatchThreshold."""
        return collections.search_users(self.backend, self.params)

    def search_users_by_image(self) -> Deferred[Any]:
        """Users like the image's largest face; the image's other faces as UnsearchedFaces."""
        return Deferred(*collections.search_users_by_image(self.backend, self.params))

    # --- copies and policies -------------------------------------------------------------------------

    def copy_project_version(self) -> Json:
        """partial: copies a trained version into a project of this server, as the source's policies allow.

        The files are copied before the call answers: the copy is COPYING_COMPLETED at once."""
        return copies.copy_project_version(self.backend, self.params, _output_config(self.params))

    def put_project_policy(self) -> Json:
        """partial: attaches a policy to a project, or replaces one given its revision; at most 5.

        The policies decide copies between projects: Principal is not compared, a Condition never allows."""
        return policies.put_project_policy(self.backend, self.params)

    def list_project_policies(self) -> Json:
        """Lists a project's policies with their documents and revisions, paginated (MaxResults 1-5)."""
        return policies.list_project_policies(self.backend, self.params)

    def delete_project_policy(self) -> Json:
        """Deletes a project policy (checking its PolicyRevisionId when one is given)."""
        return policies.delete_project_policy(self.backend, self.params)

    # --- tags ----------------------------------------------------------------------------------------

    def tag_resource(self) -> Json:
        """Adds tags to a project, model version, dataset or face collection."""
        p = self.params
        arn, tags = p.arn("ResourceArn"), p.tags(required=True)
        if not collections.tag(self.backend, arn, tags):
            self.backend.tag_resource(arn, tags)
        return {}

    def untag_resource(self) -> Json:
        """Removes tags by key."""
        p = self.params
        arn, keys = p.arn("ResourceArn"), p.strings("TagKeys", max_items=200, max_len=128) or []
        if not collections.untag(self.backend, arn, keys):
            self.backend.untag_resource(arn, keys)
        return {}

    def list_tags_for_resource(self) -> Json:
        """Lists the tags of a project, model version, dataset or face collection."""
        arn = self.params.arn("ResourceArn")
        found = collections.tags_of(self.backend, arn)
        return {"Tags": self.backend.list_tags_for_resource(arn) if found is None else found}


# --- helpers shared by the operations ------------------------------------------------------------------


def _output_config(p: Params) -> tuple[str, str]:
    """OutputConfig's S3Bucket (required) and S3KeyPrefix, checked."""
    output = p.required_struct("OutputConfig")
    bucket = output.string("S3Bucket", min_len=3, max_len=255, pattern=BUCKET)
    prefix = output.string("S3KeyPrefix", max_len=1024) or ""
    if bucket is None:
        raise InvalidParameterException("OutputConfig.S3Bucket is required.")
    return _checked_bucket(bucket), _checked_prefix(prefix)


def _checked_bucket(bucket: str) -> str:
    try:
        return check_bucket(bucket)
    except VisionloopError as e:
        raise InvalidParameterException(f"OutputConfig.S3Bucket: {e}") from None


def _checked_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    if prefix:
        try:
            check_key(prefix)
        except VisionloopError as e:
            raise InvalidParameterException(f"OutputConfig.S3KeyPrefix: {e}") from None
    return prefix


def _paged(key: str, items: list[Any], token: str | None) -> Json:
    return {key: items, "NextToken": token} if token else {key: items}


# --- dispatch ------------------------------------------------------------------------------------------

Handler = Callable[[RekognitionResponse], "Json | Deferred[Any]"]


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


OPERATIONS: dict[str, Handler] = {
    _camel(name): fn
    for name, fn in vars(RekognitionResponse).items()
    if callable(fn) and not name.startswith("_")
}


def unsupported(operation: str) -> AwsError:
    """The answer to an operation this server does not serve: AccessDeniedException (modelled, so
    ``client.exceptions.AccessDeniedException`` catches it) for one of Rekognition's, AWS's
    UnknownOperationException for a name Rekognition does not have (see api_operations.py)."""
    if operation in REKOGNITION_OPERATIONS:
        return AccessDeniedException(f"{operation} is not supported by this server.")
    return UnknownOperationException(f"{operation} is not an operation of Amazon Rekognition.")


def dispatch(backend: RekognitionBackend, operation: str, body: dict[str, Any]) -> Json | Deferred[Any]:
    """Run ``operation`` (e.g. "CreateProject") on ``body``; domain errors leave as AWS errors. The answer
    is JSON, or Deferred for an operation that waits on a future."""
    handler = OPERATIONS.get(operation)
    if handler is None:
        raise unsupported(operation)
    try:
        return handler(RekognitionResponse(backend, Params(body)))
    except VisionloopError as e:
        raise from_domain(e) from e
