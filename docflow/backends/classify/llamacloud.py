"""LlamaCloud Classify through the official `llama-cloud` client (extra `llamacloud`).

The rules sent are the types of `data/doc_types.yaml` with their descriptions (`other` is what no rule
matches, so it is not sent). The file is uploaded (`files.create`, purpose `classify`), a classify job runs
on it (`classify.create` + polling `classify.get`), and its result's type, confidence and reasoning become
the `Classification`; below `classify_threshold`, or with no type, the result is `other`.
"""

from typing import Any, Self

from docflow import metering
from docflow.backends.classify.local import FALLBACK, RuleSet, load_rules
from docflow.backends.classify.remote import (
    LLAMA_KEY_ENV,
    RemoteError,
    api_error,
    from_client,
    llamacloud_client,
)
from docflow.models import Classification, RawFile
from docflow.settings import Settings, data_dir

SERVICE = "LlamaCloud Classify"


class LlamaCloudClassifier:
    name = "llamacloud/classify"

    def __init__(
        self, client: Any, rules: RuleSet, threshold: float, timeout_s: float, poll_s: float
    ) -> None:
        self.client = client
        self.rules = rules
        self.threshold = threshold
        self.timeout_s = timeout_s
        self.poll_s = poll_s

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        rules = load_rules(settings.rules_path or data_dir() / "doc_types.yaml")
        return cls(
            llamacloud_client(settings),
            rules,
            settings.classify_threshold,
            settings.remote_timeout_s,
            settings.remote_poll_interval_s,
        )

    def configuration(self) -> dict[str, Any]:
        rules = [
            {"type": name, "description": description}
            for name, description in self.rules.descriptions.items()
            if name != FALLBACK
        ]
        return {"rules": rules}

    def classify(self, data: bytes, raw: RawFile) -> Classification:
        calls, job = 0, None
        try:
            calls += 1
            uploaded = self.client.files.create(
                file=(raw.filename or "document", data, raw.content_type or "application/octet-stream"),
                purpose="classify",
            )
            calls += 1  # the job: its create and polls are one call of the client's
            job = self.client.classify.run(
                file_input=uploaded.id,
                configuration=self.configuration(),
                polling_interval=self.poll_s,
                max_interval=max(self.poll_s, 5.0),
                polling_timeout=self.timeout_s,
            )
        except Exception as exc:
            if from_client(exc, "llama_cloud"):
                raise api_error(exc, SERVICE, LLAMA_KEY_ENV) from exc
            raise
        finally:
            billed = (raw.pages or 1) if job is not None else 0
            credits = metering.credits_of(job) if job is not None else 0.0
            metering.report(
                "llamacloud", "classify", remote_calls=calls, pages_billed=billed, credits=credits
            )
        if job.result is None:
            raise RemoteError(f"{SERVICE} job {job.id} completed without a result")
        return self.to_classification(job.result.type, job.result.confidence, job.result.reasoning)

    def to_classification(self, doc_type: str | None, confidence: float, reasoning: str) -> Classification:
        confidence = min(max(float(confidence), 0.0), 1.0)
        known = doc_type in self.rules.types
        if known and doc_type != FALLBACK and confidence >= self.threshold:
            return Classification(
                doc_type=str(doc_type),
                confidence=confidence,
                reasoning=reasoning or "(no reasoning given)",
                scores={str(doc_type): confidence},
                backend=self.name,
            )
        why = (
            f"{doc_type} {confidence:.2f} is below the threshold {self.threshold:.2f}"
            if known and doc_type != FALLBACK
            else f"no rule matched ({doc_type or 'no type'})"
        )
        return Classification(
            doc_type=FALLBACK,
            confidence=confidence if not known or doc_type == FALLBACK else 1.0 - confidence,
            reasoning=f"{FALLBACK}: {why}; {reasoning}".rstrip("; "),
            scores={str(doc_type): confidence} if doc_type else {},
            backend=self.name,
        )
