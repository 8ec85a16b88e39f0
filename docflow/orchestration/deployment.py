"""A deployment's Dagster configuration (docker/dagster.yaml, the Helm chart's rendered instance) checked
against Dagster's own schemas, and the `dagster` CLI commands the images run. Dagster has no public API to
validate one configurable class's config or to list its CLI, so these go through its private modules
(named in compat.py)."""

from typing import Any

import click
from dagster._cli import cli as dagster_cli
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config


def instance_config(dagster_home: str) -> dict[str, Any]:
    """The dagster.yaml in `dagster_home`, read and validated as Dagster reads an instance's."""
    config, _ = dagster_instance_config(dagster_home)
    return config


def config_errors(cls: type, config: dict[str, Any]) -> list[str]:
    """What is wrong with `config` for the configurable class `cls` (a run launcher, storage...), by its
    config schema; empty when it is valid."""
    result = validate_config(cls.config_type(), config)  # type: ignore[attr-defined]
    return [] if result.success else [error.message for error in result.errors]


def dagster_command(*argv: str) -> click.Command:
    """The `dagster` CLI's command at `argv` (e.g. "instance", "migrate"); KeyError if Dagster renamed it."""
    command: click.Command = dagster_cli
    for name in argv:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command
