import dagster as dg

from docflow.defs import build_defs
from docflow.settings import Settings


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs(Settings())  # the environment is read here, once, when Dagster loads the location
