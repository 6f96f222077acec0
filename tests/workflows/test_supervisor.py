"""The server hands its resolved settings to its worker processes through the environment; every setting
must come back as it was (access keys included: str() of their tuple is not a valid value)."""

from __future__ import annotations

import dataclasses

from visionloop.settings import AccessKey, Settings, load_settings
from visionloop.workflows.supervisor import worker_env


def test_worker_environment_round_trips_every_setting(settings: Settings) -> None:
    assert load_settings(environ=worker_env(settings)) == settings
    changed = dataclasses.replace(
        settings,
        access_keys=(AccessKey("AK1", "s" * 16), AccessKey("AK2", "t" * 20)),
        workers=3,
        inference_restore=False,
        workflow_poll_seconds=0.25,
        import_roots=("/srv/photos", "/mnt/shared"),
        trusted_proxies=("10.0.0.2",),
        webhook_allow_private=True,
    )
    assert load_settings(environ=worker_env(changed)) == changed
