"""The command line as a user runs it: a real process for the entry point, click's runner for the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.factories import classification_line, image_bytes, photo_bytes, write_folder_dataset
from visionloop.cli import cli
from visionloop.errors import InvalidManifest


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    data = tmp_path / "var"

    def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
        result = CliRunner().invoke(
            cli, ["--data-dir", str(data), *args], input=input, catch_exceptions=False
        )
        return result.exit_code, result.output

    return invoke


def test_project_lifecycle_and_json_output(run) -> None:  # type: ignore[no-untyped-def]
    assert run("project", "create", "fruit")[0] == 0
    code, out = run("project", "create", "boxes", "--task", "object_detection", "--json")
    assert code == 0 and json.loads(out)["task"] == "object_detection"
    code, out = run("project", "list", "--json")
    assert [p["name"] for p in json.loads(out)] == ["fruit", "boxes"]
    code, out = run("project", "delete", "boxes", input="n\n")
    assert code == 1
    assert run("project", "delete", "boxes", "--yes")[0] == 0
    code, out = run("project", "list", "--json")
    assert [p["name"] for p in json.loads(out)] == ["fruit"]


def test_import_stats_split_export(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = write_folder_dataset(tmp_path / "d", {"apple": 10, "pear": 5})
    run("project", "create", "fruit")
    code, out = run("dataset", "import", "fruit", str(root), "--json")
    report = json.loads(out)
    assert code == 0 and report["imported"] == 15 and report["labels"] == ["apple", "pear"]
    code, out = run("dataset", "stats", "fruit", "--json")
    stats = json.loads(out)
    assert stats["images"] == 15 and any("no TEST dataset" in w for w in stats["warnings"])
    code, out = run("dataset", "split", "fruit", "--json")
    split = json.loads(out)
    assert {k: split[k] for k in ("seed", "test_fraction", "train", "test")} == {
        "seed": 42,
        "test_fraction": 0.2,
        "train": 12,
        "test": 3,
    }
    # the factory's flat-colour images all look alike to the perceptual hash: one group, and a warning
    assert split["groups"] == 1 and any("one group of similar photos" in w for w in split["warnings"])
    code, out = run("dataset", "stats", "fruit")
    assert code == 0 and "15 images (12 train, 3 test)" in out
    manifest = tmp_path / "out.manifest"
    code, out = run("dataset", "export", "fruit", "--output", str(manifest))
    assert code == 0 and len(manifest.read_text().splitlines()) == 12


def test_buckets_put_ls_sync(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "a.jpg"
    f.write_bytes(image_bytes())
    assert run("bucket", "put", str(f), "s3://photos/in/")[0] == 0
    code, out = run("bucket", "ls", "--json")
    assert json.loads(out) == ["photos"]
    folder = write_folder_dataset(tmp_path / "d", {"x": 2})
    code, out = run("bucket", "sync", str(folder), "s3://photos/set")
    assert "copied 2 files" in out
    code, out = run("bucket", "sync", str(folder), "s3://photos/set")
    assert "copied 0 files" in out and "2 already up to date" in out
    code, out = run("bucket", "ls", "s3://photos/set/", "--json")
    assert [o["key"] for o in json.loads(out)] == ["set/x/x_0.jpg", "set/x/x_1.jpg"]
    (tmp_path / "m.manifest").write_text(classification_line("s3://photos/in/a.jpg", "cat"))
    run("project", "create", "p")
    run("bucket", "put", str(tmp_path / "m.manifest"), "s3://photos/m.manifest")
    code, out = run("dataset", "import", "p", "s3://photos/m.manifest", "--json")
    assert json.loads(out)["imported"] == 1


def _main(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "visionloop", "--data-dir", str(tmp_path / "var"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "args, message",
    [
        (("project", "create", "bad name!"), "invalid project name"),
        (("dataset", "stats", "ghost"), "project 'ghost' does not exist"),
        (("dataset", "import", "ghost", "/no/such/folder"), "cannot tell what"),
        (("bucket", "ls", "s3://nobucket"), "bucket 'nobucket' does not exist"),
        (("bucket", "ls", "s3://photos/../../etc/"), "escapes its bucket"),
    ],
)
def test_errors_exit_non_zero_with_a_message_and_no_traceback(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    proc = _main(tmp_path, *args)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_duplicate_project_and_usage_errors(tmp_path: Path) -> None:
    assert _main(tmp_path, "project", "create", "p").returncode == 0
    proc = _main(tmp_path, "project", "create", "p")
    assert proc.returncode == 1 and "already exists" in proc.stderr
    proc = _main(tmp_path, "project", "create", "q", "--task", "nonsense")
    assert proc.returncode == 2 and "Invalid value" in proc.stderr
    proc = _main(tmp_path, "--version")
    assert proc.returncode == 0 and "visionloop" in proc.stdout


def test_bad_setting_is_reported(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "VISIONLOOP_PORT": "eighty"}
    proc = subprocess.run(
        [sys.executable, "-m", "visionloop", "--data-dir", str(tmp_path), "serve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1 and "VISIONLOOP_PORT" in proc.stderr


@pytest.mark.parametrize(
    ("host", "keys", "allowed"),
    [
        ("127.0.0.1", "", True),
        ("127.0.0.2", "", True),
        ("localhost", "", True),
        ("::1", "", True),
        ("[::1]", "", True),
        ("0.0.0.0", "", False),
        ("::", "", False),
        ("192.168.1.10", "", False),
        ("myhost.example.com", "", False),
        ("", "", False),
        ("0.0.0.0", "AKID:abcdefghijklmnop", True),
        ("::", "AKID:abcdefghijklmnop", True),
        ("127.0.0.1", "AKID:abcdefghijklmnop", True),
    ],
)
def test_serve_listens_off_loopback_only_with_access_keys(host: str, keys: str, allowed: bool) -> None:
    from visionloop.cli import bind_host
    from visionloop.errors import InvalidInput
    from visionloop.settings import load_settings

    settings = load_settings({"host": host}, environ={"VISIONLOOP_ACCESS_KEYS": keys})
    if allowed:
        assert bind_host(settings) == host
    else:
        with pytest.raises(InvalidInput, match="no access_keys are set") as e:
            bind_host(settings)
        assert "loopback" in e.value.message and "VISIONLOOP_ACCESS_KEYS" in e.value.message


def test_serve_refuses_a_public_address_without_keys_before_starting(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("VISIONLOOP_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "visionloop",
            "--data-dir",
            str(tmp_path / "var"),
            "serve",
            "--host",
            "0.0.0.0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1 and "refusing to listen on '0.0.0.0'" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "var").exists()


def test_serve_says_whether_authentication_is_on() -> None:
    from visionloop.cli import auth_summary
    from visionloop.settings import load_settings

    off = auth_summary(load_settings(environ={}))
    assert "authentication is off" in off and "this machine only" in off
    keys = "A:abcdefghijklmnop,B:abcdefghijklmnop"
    on = auth_summary(load_settings(environ={"VISIONLOOP_ACCESS_KEYS": keys}))
    assert "authentication is on (2 access keys)" in on and "Bearer" in on


def test_import_groups_from_folders_and_split_by_group(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "d"
    n = 0
    for label in ("apple", "pear"):
        for session in range(5):
            folder = root / label / f"{label}-{session}"
            folder.mkdir(parents=True)
            for k in range(2):
                n += 1
                (folder / f"shot.{'ab'[k]}.jpg").write_bytes(photo_bytes(n))
    run("project", "create", "fruit")
    code, out = run("dataset", "import", "fruit", str(root), "--groups-from-folders", "--json")
    assert code == 0 and json.loads(out)["imported"] == 20 and json.loads(out)["labels"] == ["apple", "pear"]
    code, out = run("dataset", "split", "fruit")
    assert code == 0 and "16 train, 4 test (10 groups of similar photos kept together)" in out
    code, out = run("dataset", "import", "fruit", "x.manifest", "--groups-from-folders")
    assert code == 2 and "folder imports only" in out


def test_import_caps_a_manifest_at_max_import_file_mb(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    manifest = tmp_path / "big.manifest"
    line = classification_line(str(tmp_path / "a.jpg"), "apple")
    manifest.write_text("\n".join([line] * 2000) + "\n")  # about 250 KB
    assert run("project", "create", "capped")[0] == 0
    monkeypatch.setenv("VISIONLOOP_MAX_IMPORT_FILE_MB", "0.1")
    with pytest.raises(InvalidManifest, match="larger than the limit of 104,857 bytes"):
        run("dataset", "import", "capped", str(manifest), "--format", "manifest")
