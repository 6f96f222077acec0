"""The server's inference units as a component of its background (workflows.background.BackgroundGroup).

Kept apart from the inference host (workflows.inference) because its start is about the other servers
on the database, not about processes: see core.serving.open_serving."""

from __future__ import annotations

import contextlib
from typing import Self

from visionloop.core.services import Services
from visionloop.core.serving import Serving, open_serving


class InferenceUnits:
    """At start: this server is shown present to the others on the database and brings back the
    versions the last server left (alone), or follows the RUNNING ones (beside others). At stop: the
    units close, and then this server is no longer shown present."""

    name = "inference units"

    def __init__(self, svc: Services, serving: Serving) -> None:
        self.svc, self.serving = svc, serving
        self._presence: contextlib.ExitStack | None = None

    def start(self) -> Self:
        if self._presence is None:
            self._presence = open_serving(self.svc, self.serving)
        return self

    def flush(self, timeout: float | None = 30.0) -> bool:
        return True  # requests are the host's; nothing is queued here

    def stop(self, timeout: float | None = 30.0) -> None:
        if self._presence is not None:
            try:
                self.serving.host.close()
            finally:
                self._presence.close()
                self._presence = None
