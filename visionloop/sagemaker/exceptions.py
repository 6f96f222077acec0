"""SageMaker errors: the model's ResourceNotFound, ResourceInUse and ResourceLimitExceeded
(``sm.exceptions.X`` catches them), and ValidationException, what SageMaker answers for a request that
breaks a constraint (a ClientError with that code). They share the A2I runtime's error shape (A2I is a
part of SageMaker): the class name is the code, the body ``{"__type", "message"}``, the code also in
``X-Amzn-ErrorType``; a client mistake is 400, never 5xx."""

from __future__ import annotations

from visionloop import errors
from visionloop.a2i.exceptions import A2IError, ValidationException


class ResourceNotFound(A2IError):
    default_message = "The resource does not exist."


class ResourceInUse(A2IError):
    default_message = "The resource is in use."


class ResourceLimitExceeded(A2IError):
    default_message = "The request exceeds a resource limit."


class UnknownOperationException(A2IError):
    default_message = "The operation is not supported by this server."


class InternalFailure(A2IError):
    status = 500
    default_message = "The service had an internal error; try again."


def from_domain(exc: errors.VisionloopError) -> A2IError:
    """The SageMaker error for a domain error, keeping its message."""
    if isinstance(exc, errors.InvalidInput):
        return ValidationException(exc.message)
    if isinstance(exc, errors.NotFound):
        return ResourceNotFound(exc.message)
    if isinstance(exc, errors.QuotaExceeded):
        return ResourceLimitExceeded(exc.message)
    if isinstance(exc, errors.AlreadyExists | errors.Conflict):
        return ResourceInUse(exc.message)
    return InternalFailure()


__all__ = [
    "InternalFailure",
    "ResourceInUse",
    "ResourceLimitExceeded",
    "ResourceNotFound",
    "UnknownOperationException",
    "ValidationException",
    "from_domain",
]
