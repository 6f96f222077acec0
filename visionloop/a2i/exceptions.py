"""A2I runtime errors as classes that carry their code and HTTP status (the model's six error shapes).

botocore reads a REST-JSON error's code from the ``X-Amzn-ErrorType`` header (then the body's ``code`` or
``__type``) and its message from the body's ``message``; urls.py sends both. Client mistakes are 4xx:
SDKs retry 5xx and 429."""

from __future__ import annotations

from typing import Any

from visionloop import errors
from visionloop.aws.exceptions import clip


class A2IError(Exception):
    """Base of the errors the A2I layer answers with; the class name is the error code."""

    status = 400
    default_message = "The request is not valid."

    def __init__(self, message: str | None = None) -> None:
        self.message = clip(message or self.default_message)
        super().__init__(self.message)

    @property
    def code(self) -> str:
        return type(self).__name__

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message}


class ValidationException(A2IError):
    default_message = "The request failed to satisfy a constraint."


class ResourceNotFoundException(A2IError):
    status = 404
    default_message = "The resource does not exist."


class ConflictException(A2IError):
    status = 409
    default_message = "A human loop with this name exists with a different input."


class ServiceQuotaExceededException(A2IError):
    status = 402
    default_message = "The request exceeds a service quota."


class ThrottlingException(A2IError):
    status = 429
    default_message = "The request was throttled."


class InternalServerException(A2IError):
    status = 500
    default_message = "The service had an internal error; try again."


def from_domain(exc: errors.VisionloopError) -> A2IError:
    """The A2I error for a domain error, keeping its message. Operation-specific kinds (a duplicate
    name is a ConflictException on StartHumanLoop) are chosen in backend.py."""
    if isinstance(exc, errors.QuotaExceeded):
        return ServiceQuotaExceededException(exc.message)
    if isinstance(exc, errors.InvalidInput):
        return ValidationException(exc.message)
    if isinstance(exc, errors.NotFound):
        return ResourceNotFoundException(exc.message)
    if isinstance(exc, errors.AlreadyExists):
        return ConflictException(exc.message)
    if isinstance(exc, errors.Conflict):
        return ValidationException(exc.message)
    return InternalServerException()
