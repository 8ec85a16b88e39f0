"""Commands that start Dagster's own processes with this interpreter."""

import sys
from pathlib import Path


def daemon_command(workspace: Path) -> list[str]:
    """dagster-daemon on a workspace, run with the current interpreter as `dagster dev` runs it (the
    `dagster-daemon` script may belong to another environment on PATH)."""
    return [sys.executable, "-m", "dagster._daemon", "run", "-w", str(workspace)]
