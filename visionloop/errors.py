"""The one exception tree of visionloop. No HTTP status codes live here: each wire layer
(the native REST API, the AWS-compatible API, the CLI) maps these classes once.

    VisionloopError
    ├── InvalidInput              a request or a file is malformed or out of range
    │   ├── InvalidImage          not a readable JPEG/PNG, truncated, or a decompression bomb
    │   ├── ImageTooLarge         over the byte or pixel limits
    │   ├── InvalidKey            a bucket key escapes its bucket (.., absolute, NUL)
    │   └── InvalidManifest       a manifest that cannot be used at all (empty, too many bad lines)
    ├── NotFound                  a named thing does not exist
    │   └── ObjectNotFound        a stored object (bucket/key or content hash) is missing
    ├── AlreadyExists             a name that must be unique is taken
    ├── Conflict                  the thing exists but its state forbids the operation
    │   ├── NotReady              the thing is not ready yet (e.g. a model version not RUNNING)
    │   └── QuotaExceeded         a limit on how many of a thing may exist at once is reached
    ├── NotFitted                 a trainer or head used before fit()
    ├── Unauthenticated           missing or wrong credentials (a reviewer's password, a session)
    │   └── TooManyAttempts       sign-in refused for a while after repeated failures
    ├── Forbidden                 a rule forbids it (a project policy refuses a copy)
    ├── Unavailable               an optional component (extra, model weights) is not installed
    └── StorageError              the metadata store or object store failed
"""

from __future__ import annotations

from typing import Any


class VisionloopError(Exception):
    """Base of every error visionloop raises on purpose."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class InvalidInput(VisionloopError):
    """A request, file or parameter is malformed or out of range."""


class InvalidImage(InvalidInput):
    """An image that is not a readable JPEG or PNG."""


class ImageTooLarge(InvalidInput):
    """An image over the byte or pixel limits."""


class InvalidKey(InvalidInput):
    """An object key or bucket name that is not allowed."""


class InvalidManifest(InvalidInput):
    """A manifest that cannot be imported at all."""


class NotFound(VisionloopError):
    """A named thing does not exist."""


class ObjectNotFound(NotFound):
    """A stored object is missing."""


class AlreadyExists(VisionloopError):
    """A name that must be unique is already taken."""


class Conflict(VisionloopError):
    """The thing exists but its current state forbids the operation."""


class NotReady(Conflict):
    """The thing is not ready for this operation yet."""


class QuotaExceeded(Conflict):
    """A limit on how many of a thing may exist at once is reached (e.g. open human loops)."""


class NotFitted(VisionloopError):
    """A trainer or head was used before it was fitted."""


class Unauthenticated(VisionloopError):
    """Credentials are missing or wrong, or a session has ended."""


class TooManyAttempts(Unauthenticated):
    """Sign-in is refused for a while after repeated failures (details: retry_after seconds)."""


class Forbidden(VisionloopError):
    """A rule forbids the operation to its caller (e.g. the source project's policies refuse a copy)."""


class Unavailable(VisionloopError):
    """An optional component is not installed or its files are missing."""


class StorageError(VisionloopError):
    """The metadata store or the object store failed."""


__all__ = [
    "AlreadyExists",
    "Conflict",
    "Forbidden",
    "ImageTooLarge",
    "InvalidImage",
    "InvalidInput",
    "InvalidKey",
    "InvalidManifest",
    "NotFitted",
    "NotFound",
    "NotReady",
    "ObjectNotFound",
    "QuotaExceeded",
    "StorageError",
    "TooManyAttempts",
    "Unauthenticated",
    "Unavailable",
    "VisionloopError",
]
