"""A throw-away PostgreSQL cluster for the storage contract tests, from Debian's binaries.

The cluster lives in a temporary folder, listens on a unix socket only (``listen_addresses=''``) and is
stopped and deleted when the test session ends. PostgreSQL refuses to run as root, so when the tests run
as root the cluster's commands run as the ``postgres`` system user (``runuser``). Each test gets a database
of its own (``fresh_database``), so tests never see each other's rows."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROLE = "visionloop"


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb and pg_ctl, or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [d for d in found if (d / "pg_ctl").exists()]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0, default=None)


def why_unavailable() -> str | None:
    """Why a cluster cannot be started here (a skip reason), or None when it can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    if find_bindir() is None:
        return "no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)"
    if os.getuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser: PostgreSQL refuses to run as root"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run PostgreSQL as"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running cluster: its folder (data, socket, log), its port and the databases made so far."""

    bindir: Path
    root: Path
    port: int
    _names: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{ROLE}@/{database}?host={self.socket_dir}&port={self.port}"

    def fresh_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(
            dbname="postgres", user=ROLE, host=str(self.socket_dir), port=self.port, autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        _run(self.bindir / "pg_ctl", "stop", "-D", str(self.root / "data"), "-m", "immediate", "-w")
        shutil.rmtree(self.root, ignore_errors=True)


def _as_owner(*cmd: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.getuid() == 0 else list(cmd)


def _run(*cmd: str | Path) -> None:
    # from the temporary folder: as the postgres user, the working directory (maybe under /root) may be
    # out of reach
    done = subprocess.run(
        _as_owner(*map(str, cmd)), capture_output=True, text=True, timeout=120, cwd=tempfile.gettempdir()
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({done.returncode}): {done.stderr.strip()}")


def start_cluster() -> Cluster:
    """initdb + pg_ctl start in a new temporary folder; the caller stops it (``Cluster.stop``)."""
    bindir = find_bindir()
    assert bindir is not None, why_unavailable()
    root = Path(tempfile.mkdtemp(prefix="visionloop-pg-"))
    (root / "socket").mkdir()
    if os.getuid() == 0:
        for path in (root, root / "socket"):
            shutil.chown(path, "postgres", "postgres")
    cluster = Cluster(bindir, root, _free_port())
    try:
        _run(bindir / "initdb", "-D", root / "data", "-U", ROLE, "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses='' -k {cluster.socket_dir} -p {cluster.port} -c fsync=off"
        _run(bindir / "pg_ctl", "start", "-D", root / "data", "-l", root / "log", "-o", options, "-w")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster
