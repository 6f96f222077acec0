"""AWS errors as classes that carry their code and HTTP status (moto's exceptions.py), and the one map
from visionloop.errors to them.

botocore raises ``client.exceptions.<Code>`` when the JSON body's ``__type`` names a modelled error, so
every error leaves as ``{"__type", "Code", "Message", "message"}``. Client mistakes are 4xx: SDKs retry
5xx, so only server faults are 500."""

from __future__ import annotations

from typing import Any

from visionloop import errors

MAX_ECHO = 1000  # characters of a message: an error never echoes a whole request back


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """``text``, cut to ``limit`` characters with a note of how much was cut."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more characters)"


class AwsError(Exception):
    """Base of the errors the AWS layer answers with; the class name is the AWS error code."""

    status = 400
    default_message = "Request has invalid parameters."

    def __init__(self, message: str | None = None) -> None:
        self.message = clip(message or self.default_message)
        super().__init__(self.message)

    @property
    def code(self) -> str:
        return type(self).__name__

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "__type": self.code,
            "Code": self.code,
            "Logref": request_id,
            "Message": self.message,
            "message": self.message,
        }


# --- modelled in Rekognition's API ---------------------------------------------------------------------


class AccessDeniedException(AwsError):
    default_message = "You are not authorized to perform the action."


class ConflictException(AwsError):
    default_message = "A user with the same id already exists in the collection."


class ImageTooLargeException(AwsError):
    default_message = "Image size is too large."


class InvalidImageFormatException(AwsError):
    default_message = "Request has invalid image format."


class InvalidPaginationTokenException(AwsError):
    default_message = "Invalid Token"


class InvalidParameterException(AwsError):
    default_message = "Request has invalid parameters."


class InvalidS3ObjectException(AwsError):
    default_message = (
        "Unable to get object metadata from S3. Check object key, region and/or access permissions."
    )


class LimitExceededException(AwsError):
    default_message = "A service limit was exceeded."


class ResourceAlreadyExistsException(AwsError):
    default_message = "The resource already exists."


class ResourceInUseException(AwsError):
    default_message = "The resource is in use."


class ResourceNotFoundException(AwsError):
    default_message = "The resource does not exist."


class ResourceNotReadyException(AwsError):
    default_message = "The resource is not ready."


class ServiceQuotaExceededException(AwsError):
    default_message = "The size of the resource exceeds the allowed limit."


class InternalServerError(AwsError):
    status = 500
    default_message = "Amazon Rekognition experienced a service issue. Try your call again."


# --- AWS JSON protocol errors (not in the model; botocore raises a plain ClientError) -------------------


class UnknownOperationException(AwsError):
    default_message = "The operation is not supported by this server."


class SerializationException(AwsError):
    default_message = "The request body is not valid JSON of the expected shape."


class ValidationException(AwsError):
    default_message = "The request failed to satisfy a constraint."


# --- authentication (SigV4; the codes and statuses AWS JSON services answer with) -------------------------


class MissingAuthenticationTokenException(AwsError):
    status = 403
    default_message = "Missing Authentication Token"


class IncompleteSignatureException(AwsError):
    default_message = "The Authorization header is not a complete AWS4-HMAC-SHA256 signature."


class InvalidSignatureException(AwsError):
    default_message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )


class UnrecognizedClientException(AwsError):
    default_message = "The security token included in the request is invalid."


# --- the one map from the domain errors ------------------------------------------------------------------

DOMAIN: tuple[tuple[type[errors.VisionloopError], type[AwsError]], ...] = (
    (errors.ImageTooLarge, ImageTooLargeException),
    (errors.InvalidImage, InvalidImageFormatException),
    (errors.InvalidInput, InvalidParameterException),  # InvalidKey, InvalidManifest too
    (errors.NotFound, ResourceNotFoundException),
    (errors.AlreadyExists, ResourceAlreadyExistsException),
    (errors.NotReady, ResourceNotReadyException),
    (errors.Conflict, ResourceInUseException),
    (errors.Forbidden, AccessDeniedException),
    (errors.NotFitted, InternalServerError),
    (errors.Unavailable, InternalServerError),
    (errors.StorageError, InternalServerError),
)


def from_domain(exc: errors.VisionloopError) -> AwsError:
    """The AWS error for a domain error, keeping its message; unknown kinds are server faults."""
    for domain, aws in DOMAIN:
        if isinstance(exc, domain):
            return aws(exc.message)
    return InternalServerError(exc.message)


# --- project policies (aws/policies.py, aws/copies.py) ---------------------------------------------------


class InvalidPolicyRevisionIdException(AwsError):
    default_message = "The supplied revision id for the project policy is invalid."


class MalformedPolicyDocumentException(AwsError):
    default_message = (
        "The format of the project policy document that you supplied to PutProjectPolicy is incorrect."
    )


# --- DetectModerationLabels' human loops (aws/moderation_loops.py) ---------------------------------------


class HumanLoopQuotaExceededException(AwsError):
    """The flow has as many open human loops as it may (ResourceType, QuotaCode and ServiceCode as AWS)."""

    status = 402
    default_message = "The number of in-progress human reviews you have has exceeded the number allowed."

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            **super().body(request_id),
            "ResourceType": "human-loop",
            "QuotaCode": "open-human-loops-per-flow",
            "ServiceCode": "sagemaker",
        }
