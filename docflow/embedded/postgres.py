"""Embedded Postgres 16 + pgvector from the `pgserver` wheel, listening on 127.0.0.1:PORT over TCP.

Layout under `<home>/pg`: `data/` (PGDATA), `postgres.log`, `.lock`. The server is started with `pg_ctl`
in its own session, so it outlives the process that started it; `stop_postgres` (`docflow down`) stops it.
Authentication is `trust` for local connections, so the URL carries no password.
"""

import os
import pwd
import shutil
import stat
import subprocess
from contextlib import suppress
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from docflow.embedded._process import (
    LOOPBACK,
    file_lock,
    pid_alive,
    port_open,
    require_free_ports,
    terminate,
    unavailable,
    wait_for,
)
from docflow.errors import BackendUnavailable, ConfigError

SUPERUSER = "postgres"
DATABASES = ("docflow", "dagster")
RUN_AS_WHEN_ROOT = "pgserver"  # Postgres refuses to run as root; the same user pgserver itself creates.
START_TIMEOUT_S = 60.0


def postgres_url(port: int, database: str = "docflow") -> str:
    return f"postgresql://{SUPERUSER}@{LOOPBACK}:{port}/{database}"


def ensure_postgres(home: Path, port: int, timeout: float = START_TIMEOUT_S) -> str:
    """Start (or reuse) the embedded server for `home`, create the databases, return the docflow URL."""
    service_dir = _service_dir(home)
    with file_lock(service_dir / ".lock"):
        running = running_server(home)
        if running is None:
            _start(service_dir, port, timeout)
        elif running[1] != port:
            raise ConfigError(
                f"the embedded Postgres for {service_dir} already runs on port {running[1]}, not {port}: "
                "run `docflow down` first or set DOCFLOW_EMBEDDED_PG_PORT to match"
            )
        elif not wait_for(lambda: _answers(port), timeout, interval=0.2):
            raise unavailable(
                "Postgres", f"(pid {running[0]}) does not answer on port {port}", _log(service_dir)
            )
        _ensure_databases(port)
    return postgres_url(port)


def stop_postgres(home: Path, timeout: float = 30.0) -> bool:
    """Stop the embedded server for `home` if it runs; True when something was stopped."""
    service_dir = _service_dir(home, create=False)
    if not service_dir.is_dir():
        return False
    with file_lock(service_dir / ".lock"):
        running = running_server(home)
        if running is None:
            return False
        with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            _pg_ctl(service_dir, ["stop", "-m", "fast", "-w", "-t", str(int(timeout))], timeout + 5)
        terminate(running[0], timeout=10.0, sig=2)  # no-op when already gone; SIGINT = fast shutdown
        return True


def running_server(home: Path) -> tuple[int, int] | None:
    """(pid, port) of a live postmaster for `home`'s data dir, from its postmaster.pid, else None."""
    pid_file = _service_dir(home, create=False) / "data" / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None
    return (pid, port) if pid_alive(pid) else None


# --- starting ------------------------------------------------------------------------------------------


def _start(service_dir: Path, port: int, timeout: float) -> None:
    require_free_ports("Postgres", {"postgres": port}, "DOCFLOW_EMBEDDED_PG_PORT")
    user = _run_as()
    if user:
        _grant_access(service_dir, user)
    if not (service_dir / "data" / "PG_VERSION").exists():
        _initdb(service_dir)
    settings = " ".join(f"-c {name}={value}" for name, value in server_settings().items())
    options = f"-c listen_addresses={LOOPBACK} -p {port} -c unix_socket_directories='' {settings}"
    args = ["start", "-w", "-t", str(int(timeout)), "-l", str(_log(service_dir)), "-o", options]
    try:
        _pg_ctl(service_dir, args, timeout + 10)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise unavailable("Postgres", f"failed to start on port {port} ({exc})", _log(service_dir)) from exc
    if not wait_for(lambda: _answers(port), timeout, interval=0.2):
        raise unavailable(
            "Postgres", f"did not answer on port {port} within {timeout:.0f}s", _log(service_dir)
        )


def server_settings(memory_bytes: int | None = None) -> dict[str, str]:
    """Memory settings for the machine (initdb's defaults are for a much smaller one). Search at scale reads
    an HNSW graph at random: a quarter of the RAM (capped) keeps a million chunks' graph in Postgres' own
    buffers; the planner is told the OS caches half the RAM and that a random read costs about a sequential
    one (SSD or cache); sorts, hashes and the bitmaps of full-text matches get room before spilling or going
    lossy; index builds (CREATE INDEX of a new vector dimension, migrations) a share of the RAM (capped).
    Per-statement settings may ask for more."""
    ram = memory_bytes or _physical_memory()
    mb = 2**20
    return {
        "shared_buffers": f"{max(128, min(ram // 4, 4096 * mb) // mb)}MB",
        "effective_cache_size": f"{max(512, ram // 2 // mb)}MB",
        "maintenance_work_mem": f"{max(64, min(ram // 16, 1024 * mb) // mb)}MB",
        "work_mem": "16MB",
        "random_page_cost": "1.1",
    }


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 4 * 2**30


def _initdb(service_dir: Path) -> None:
    """initdb into a scratch dir, then rename, so an interrupted init never leaves a half-made PGDATA."""
    scratch = service_dir / "data.init"
    shutil.rmtree(scratch, ignore_errors=True)
    args = ["-D", str(scratch), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-locale"]
    result = _run(["initdb", *args], service_dir, timeout=120)
    if result.returncode != 0:
        raise BackendUnavailable(f"initdb failed for {service_dir}:\n{result.stdout[-2000:]}")
    scratch.rename(service_dir / "data")


def _pg_ctl(service_dir: Path, args: list[str], timeout: float) -> None:
    result = _run(["pg_ctl", "-D", str(service_dir / "data"), *args], service_dir, timeout)
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout)


def _run(command: list[str], service_dir: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a Postgres binary (as the unprivileged user when we are root), output captured."""
    executable = str(_bin_dir() / command[0])
    user = _run_as()
    identity: dict[str, Any] = {}
    if user:  # the user's own group only: root's group may have no access where "others" do
        identity = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}
    return subprocess.run(
        [executable, *command[1:]],
        cwd=service_dir,
        **identity,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        start_new_session=True,
        check=False,
    )


def _ensure_databases(port: int) -> None:
    """Create the docflow and dagster databases if missing; prove pgvector loads in docflow."""
    with psycopg.connect(postgres_url(port, "postgres"), autocommit=True, connect_timeout=5) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in DATABASES:
            if name not in existing:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(postgres_url(port, "docflow"), autocommit=True, connect_timeout=5) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def _answers(port: int) -> bool:
    if not port_open(port):
        return False
    try:
        with psycopg.connect(postgres_url(port, "postgres"), connect_timeout=2) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.Error:
        return False


# --- paths and users -----------------------------------------------------------------------------------


def _service_dir(home: Path, create: bool = True) -> Path:
    path = home.expanduser().resolve() / "pg"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _log(service_dir: Path) -> Path:
    return service_dir / "postgres.log"


def _bin_dir() -> Path:
    spec = find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise ConfigError(
            "the embedded Postgres needs `pgserver` (pip install pgserver), or set DOCFLOW_DATABASE_URL"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


def _run_as() -> str | None:
    """The user to run Postgres as: None (ourselves) unless we are root."""
    return RUN_AS_WHEN_ROOT if os.geteuid() == 0 else None


def _grant_access(service_dir: Path, user: str) -> None:
    """As root: make sure `user` exists, owns the service dir and can traverse to it and to the binaries."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", user], check=True, capture_output=True)
        entry = pwd.getpwnam(user)
    for path in (service_dir, *(p for p in service_dir.glob("data*") if p.is_dir())):
        _chown_tree(path, entry.pw_uid, entry.pw_gid)
    for path in (service_dir, _bin_dir()):
        for parent in path.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    if path.stat().st_uid == uid:
        return
    os.chown(path, uid, gid)
    for child in path.rglob("*"):
        os.chown(child, uid, gid, follow_symlinks=False)


__all__ = ["ensure_postgres", "postgres_url", "running_server", "stop_postgres"]
