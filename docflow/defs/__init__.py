"""Dagster-facing code only: partitions, resources, assets, sensors, checks. The work lives elsewhere."""

import dagster as dg


def build_defs() -> dg.Definitions:
    from docflow.defs.assets import ASSETS, process_documents
    from docflow.defs.resources import DocflowResource
    from docflow.defs.sensors import s3_document_sensor

    return dg.Definitions(
        assets=ASSETS,
        jobs=[process_documents],
        sensors=[s3_document_sensor],
        resources={"docflow": DocflowResource()},
    )
