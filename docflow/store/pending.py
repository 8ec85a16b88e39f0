"""Documents the API registered before writing their object: the sensor requests their runs."""

from docflow.store.db import Store


def awaiting_sensor(store: Store, doc_id: str) -> tuple[int, int] | None:
    """(priority, registration time in epoch seconds) of a pending document whose run is the sensor's to
    request, else None."""
    with store.tx() as conn:
        row = conn.execute(
            """SELECT priority, extract(epoch FROM created_at)::bigint AS registered FROM docflow.documents
               WHERE doc_id = %s AND run_by_sensor AND status = 'pending'""",
            (doc_id,),
        ).fetchone()
    return None if row is None else (int(row["priority"]), int(row["registered"]))
