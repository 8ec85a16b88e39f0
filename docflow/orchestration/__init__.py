"""The only code that touches Dagster's private API: the warm run launcher, the Postgres storage classes,
batched event writes, run tags, the benchmark's daemon and backfills, and the instance's configuration.

Every private name used is listed in `compat.TOUCHPOINTS` and verified when this package is imported, so an
incompatible Dagster fails here with a message naming the touchpoint, not later inside a run."""

from docflow.orchestration import compat

compat.check()
