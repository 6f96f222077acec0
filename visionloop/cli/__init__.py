"""The ``visionloop`` command line: serve, projects, datasets, buckets, reviewers and the database.

``app`` holds the root group, its context, the output helpers and ``main``; each other module holds one
group of commands and registers them on the root group when it is imported, which importing this package
does for all of them.
"""

from visionloop.cli import (  # noqa: F401  (imported for their commands)
    accounts,
    analyze,
    batch,
    buckets,
    copies,
    datasets,
    detections,
    face_collections,
    faces,
    notify,
    parameters,
    projects,
    review,
    serving,
    training,
    workflow,
)
from visionloop.cli.app import cli, main, share_global_options
from visionloop.cli.serving import auth_summary, bind_host

share_global_options(cli)  # after every module has added its commands

__all__ = ["auth_summary", "bind_host", "cli", "main"]
