"""Small process helpers shared by the embedded services: locks, ports, pids, log tails, waiting."""

import fcntl
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil

from docflow.errors import BackendUnavailable, ConfigError

LOOPBACK = "127.0.0.1"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (created if missing) so two processes never start one service."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def require_free_ports(service: str, ports: dict[str, int], setting: str) -> None:
    """Raise a clear ConfigError when a port the service needs is already taken by another process."""
    taken = {name: port for name, port in ports.items() if port_open(port)}
    if taken:
        listed = ", ".join(f"{port} ({name})" for name, port in taken.items())
        raise ConfigError(
            f"cannot start the embedded {service}: port {listed} is already in use by another process; "
            f"stop it or choose other ports with {setting}"
        )


def pid_alive(pid: int | None) -> bool:
    """True when `pid` is a live (non-zombie) process; reaps it first if it is our own dead child."""
    if not pid:
        return False
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def process_cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def terminate(pid: int, timeout: float, sig: int = signal.SIGTERM) -> None:
    """Send `sig`, wait up to `timeout` seconds for the process to exit, then kill it."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    if wait_for(lambda: not pid_alive(pid), timeout):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_for(lambda: not pid_alive(pid), 5.0)


def wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll `check` until it returns True (-> True) or `timeout` seconds pass (-> False)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def unavailable(service: str, what: str, log: Path) -> BackendUnavailable:
    """A BackendUnavailable that quotes the end of the service's log file."""
    return BackendUnavailable(f"embedded {service} {what}; last lines of {log}:\n{log_tail(log)}")
