"""A throwaway PostgreSQL cluster for the production-instance tests and `make dev-postgres`.

`initdb` into a new folder, the server on 127.0.0.1 and a free port (its socket in that folder
too), a database and a password-protected user for Dagster; on exit the server is stopped by its
own postmaster (`pg_ctl stop`, which signals the pid the server wrote) and the folder removed.
Nothing global is touched: no service, no system cluster, no file outside the folder. The
binaries are Debian's postgresql package's (`make postgres` installs it where it is missing).

PostgreSQL refuses to run as root: as root, the cluster's programs run as the `postgres` user
the Debian package creates, and the folder is given to it.
"""

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from order_tracking_devtools.gcs_emulator import free_port

DATABASE = USER = "dagster"


@dataclass(frozen=True)
class Postgres:
    port: int
    password: str
    folder: Path
    host: str = "127.0.0.1"

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.production.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": DATABASE,
            "DAGSTER_PG_USERNAME": USER,
            "DAGSTER_PG_PASSWORD": self.password,
        }

    @property
    def log(self) -> Path:
        return self.folder / "server.log"


def binary(name: str) -> str:
    """A PostgreSQL program: on PATH, else the newest of Debian's /usr/lib/postgresql/<n>/bin."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_major, reverse=True)), None
    )
    if found is None:
        raise FileNotFoundError(f"PostgreSQL's {name} is missing: `make postgres` installs Debian's postgresql")
    return found


def _major(path: str) -> int:
    return int(Path(path).parts[-3])


def available() -> bool:
    try:
        binary("initdb")
    except FileNotFoundError:
        return False
    return True


@contextmanager
def throwaway_cluster(fsync: bool = False) -> Iterator[Postgres]:
    """fsync off by default (tests: the cluster is thrown away); on for benchmarks, as a real
    server runs."""
    folder = Path(tempfile.mkdtemp(prefix="order_tracking_pg_"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    cluster = Postgres(free_port(), secrets.token_urlsafe(16), folder)
    data = folder / "data"
    started = False
    try:
        _run(as_owner + [binary("initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
                         "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"])  # fmt: skip
        # Loopback only, socket in the folder.
        options = f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {folder} -c max_connections=200"
        if not fsync:
            options += " -c fsync=off"
        _run(as_owner + [binary("pg_ctl"), "-D", str(data), "-l", str(cluster.log), "-o", options, "-w", "start"])
        started = True
        psql = as_owner + [binary("psql"), "-h", str(folder), "-p", str(cluster.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        _run(psql + ["-c", f"CREATE ROLE {USER} LOGIN PASSWORD '{cluster.password}'"])
        _run(psql + ["-c", f"CREATE DATABASE {DATABASE} OWNER {USER}"])
        yield cluster
    finally:
        if started:
            _run(as_owner + [binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


def _run(command: list[str]) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, cwd="/")
    if completed.returncode != 0:
        program = next(Path(part).name for part in command if "/" in part)  # past `runuser ... --`
        raise RuntimeError(f"{program} failed:\n{completed.stdout}{completed.stderr}")
