"""What `docflow dev` prints while it runs: a line per run started and finished, and per document that
failed, with its file name and the reason.

In `docflow dev` Dagster's webserver, daemon and code server log errors only, and runs print from INFO up
(dagster.yaml's python_logs): their routine lines would bury these; everything else is in the UI. This
follower reads the instance's runs and docflow's documents every few seconds instead of parsing logs, so it
says the same whatever the run launcher or executor prints."""

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dagster as dg

from docflow.defs.partitions import documents_of_runs
from docflow.store import Store

# Runs are read by their last update: look back a little past the newest update seen, as a run's update
# committed in the same instant as the previous poll could otherwise be missed. A run is updated after it
# ended too (tags added by run retries): the statuses said already are remembered so each is said once.
_OVERLAP = timedelta(seconds=5)
_REMEMBERED = 10_000
_TERMINAL = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


class RunFollower:
    """Turns the changes since the previous `poll` into lines; `follow` prints them until stopped."""

    def __init__(self, instance: dg.DagsterInstance, store: Store, since: datetime | None = None) -> None:
        self.instance = instance
        self.store = store
        self._since = since.timestamp() if since else 0.0
        self._after = since
        self._said: OrderedDict[str, dg.DagsterRunStatus] = OrderedDict()  # run id -> status said last

    def poll(self) -> list[str]:
        records = self.instance.get_run_records(
            filters=dg.RunsFilter(updated_after=self._after - _OVERLAP if self._after else None),
            order_by="update_timestamp",
            ascending=True,
        )
        lines: list[str] = []
        for record in records:
            run = record.dagster_run
            if self._said.get(run.run_id) == run.status:
                continue
            self._remember(run)
            if run.status in _TERMINAL and record.end_time is not None and record.end_time < self._since:
                continue  # ended before we started following, updated since
            if run.status == dg.DagsterRunStatus.STARTED:
                subject = self._subject(run)
                head = f"run {run.run_id[:8]} started    {run.job_name}"
                lines.append(head + (f": {subject}" if subject else ""))
            elif run.status in _TERMINAL:
                lines += self._finished(record)
        if records:
            newest = records[-1].update_timestamp
            self._after = newest if self._after is None else max(self._after, newest)
        return lines

    def follow(self, stop: threading.Event, echo: Callable[[str], None], interval: float = 2.0) -> None:
        """Print lines until `stop` is set; a failed poll (the database restarting) is retried next time."""
        while not stop.is_set():
            try:
                lines = self.poll()
            except Exception as exc:  # never take `docflow dev` down: say it and poll again
                lines = [f"(progress unavailable: {type(exc).__name__}: {exc})"]
            for line in lines:
                echo(f"{time.strftime('%H:%M:%S')} {line}")
            stop.wait(interval)

    def _subject(self, run: dg.DagsterRun) -> str:
        """The document of a single-document run (file name and id), or how many a batch run holds."""
        if doc_id := run.tags.get("dagster/partition"):
            return self._name(doc_id)
        if size := run.tags.get("docflow/batch_size"):
            return f"{size} documents"
        return ""

    def _finished(self, record: dg.RunRecord) -> list[str]:
        """`run <id> finished|FAILED|canceled in <s>  <job>: <what>`, then a line per failed document of a
        batch; a failed run with no failed document (a worker that died, say) gets its error instead."""
        run = record.dagster_run
        start, end = record.start_time, record.end_time
        took = f" in {end - start:.1f} s" if start and end else ""
        verb = {
            dg.DagsterRunStatus.SUCCESS: "finished",
            dg.DagsterRunStatus.FAILURE: "FAILED  ",
            dg.DagsterRunStatus.CANCELED: "canceled",
        }[run.status]
        doc_ids = documents_of_runs(self.instance, [run])
        statuses = self.store.known(doc_ids) if doc_ids else {}
        failed = [d for d in doc_ids if statuses.get(d) == "failed"]
        details: list[str] = []
        if len(doc_ids) == 1:
            doc_id = doc_ids[0]
            status = statuses.get(doc_id, "removed")
            what = self._failure(doc_id) if failed else f"{self._name(doc_id)} {status}"
        elif not doc_ids:  # not a document job (the reconciliation report, say)
            what = ""
        else:
            counts = Counter(statuses.get(d, "removed") for d in doc_ids)
            what = f"{len(doc_ids)} documents: " + ", ".join(f"{n} {k}" for k, n in counts.most_common())
            details = [f"  failed {self._failure(d)}" for d in failed]
        if run.status == dg.DagsterRunStatus.FAILURE and not failed:
            details.append(f"  reason: {self._run_error(run.run_id)}")
        head = f"run {run.run_id[:8]} {verb}{took}  {run.job_name}" + (f": {what}" if what else "")
        return [head, *details]

    def _name(self, doc_id: str) -> str:
        docs = self.store.list_documents(doc_id=doc_id, limit=1)
        name = docs[0].filename if docs and docs[0].filename else "?"
        return f"{name} ({doc_id})"

    def _failure(self, doc_id: str) -> str:
        docs = self.store.list_documents(doc_id=doc_id, limit=1)
        if not docs:
            return f"{doc_id}: no longer registered"
        doc = docs[0]
        reason = _first_line(doc.error) or "no reason recorded"
        if doc.stage and not reason.startswith(f"{doc.stage}:"):  # docflow's errors start with their step
            reason = f"{doc.stage}: {reason}"
        return f"{doc.filename or '?'} ({doc_id}): {reason}"

    def _run_error(self, run_id: str) -> str:
        """The first step failure's error, else the run failure's message (a worker that died, say)."""
        for kind in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE):
            for entry in self.instance.all_logs(run_id, of_type=kind):
                event = entry.dagster_event
                error = getattr(event.event_specific_data, "error", None) if event else None
                message = error.message if error else (event.message if event else entry.message)
                if message:
                    return _first_line(message)
        return "no failure event recorded"

    def _remember(self, run: dg.DagsterRun) -> None:
        self._said[run.run_id] = run.status
        self._said.move_to_end(run.run_id)
        while len(self._said) > _REMEMBERED:  # the oldest said, long over by then
            self._said.popitem(last=False)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:300] if (text or "").strip() else ""


def start(
    instance: dg.DagsterInstance, store: Store, echo: Callable[[str], None], interval: float = 2.0
) -> threading.Event:
    """Follow the runs updated from now on in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    follower = RunFollower(instance, store, since=datetime.now(UTC))
    thread = threading.Thread(
        target=follower.follow, args=(stop, echo, interval), name="docflow-devlog", daemon=True
    )
    thread.start()
    return stop
