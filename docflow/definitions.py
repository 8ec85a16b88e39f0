import dagster as dg

from docflow.defs import build_defs


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs()
