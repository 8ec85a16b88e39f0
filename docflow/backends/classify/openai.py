"""OpenAI (or any OpenAI-compatible server) classification with structured outputs (extra `openai`).

The model reads the opening text of the document (`quick_text`, as the local classifier does; the file name
alone when the local parser cannot read the format) and answers a JSON object constrained by a JSON schema:
`doc_type` (an enum of the types in `data/doc_types.yaml`), `confidence` (0-1) and `reasoning` (the
evidence, quoted). Below `classify_threshold` the type is `other`.
"""

from typing import Any, Self

from docflow import metering
from docflow.backends.classify.local import RuleSet, load_rules
from docflow.backends.classify.remote import (
    OPENAI_KEY_ENV,
    RemoteError,
    api_error,
    from_client,
    openai_client,
    parse_json_object,
)
from docflow.errors import UnsupportedFormat
from docflow.models import Classification, RawFile
from docflow.settings import Settings, data_dir

SERVICE = "OpenAI"
MAX_PROMPT_CHARS = 12_000


class OpenAIClassifier:
    def __init__(self, client: Any, model: str, rules: RuleSet, threshold: float) -> None:
        self.client = client
        self.model = model
        self.rules = rules
        self.threshold = threshold
        self.name = f"openai/{model}"

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        rules = load_rules(settings.rules_path or data_dir() / "doc_types.yaml")
        return cls(openai_client(settings), settings.openai_model, rules, settings.classify_threshold)

    def response_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "doc_type": {"type": "string", "enum": list(self.rules.types)},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "reasoning": {"type": "string"},
            },
            "required": ["doc_type", "confidence", "reasoning"],
            "additionalProperties": False,
        }

    def messages(self, text: str, filename: str) -> list[dict[str, str]]:
        types = "\n".join(f"- {name}: {desc}" for name, desc in self.rules.descriptions.items())
        system = (
            "You classify business documents. Choose exactly one type:\n"
            f"{types}\n"
            "Answer with doc_type, confidence (your probability that doc_type is right, 0 to 1) and "
            "reasoning: one or two sentences naming the evidence (quote the words that decided it)."
        )
        body = text[:MAX_PROMPT_CHARS] if text.strip() else "(no text could be read from the file)"
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": f"File name: {filename or '(none)'}\n\n{body}"},
        ]

    def classify(self, data: bytes, raw: RawFile) -> Classification:
        from docflow.backends.parse.local import quick_text

        try:
            text = quick_text(data, raw.content_type)
        except UnsupportedFormat:
            text = ""
        return self.classify_text(text, raw.filename)

    def classify_text(self, text: str, filename: str = "") -> Classification:
        try:
            response = metering.openai_call(
                self.model,
                lambda: self.client.chat.completions.create(
                    model=self.model,
                    messages=self.messages(text, filename),
                    temperature=0,
                    response_format={
                        "type": "json_schema",
                        "json_schema": {"name": "classification", "schema": self.response_schema()},
                    },
                ),
            )
        except Exception as exc:
            if from_client(exc, "openai"):
                raise api_error(exc, SERVICE, OPENAI_KEY_ENV) from exc
            raise
        if not response.choices:
            raise RemoteError(f"{SERVICE} answered no choices")
        answer = parse_json_object(response.choices[0].message.content, SERVICE)
        doc_type = answer.get("doc_type")
        if doc_type not in self.rules.types:
            raise RemoteError(f"{SERVICE} answered an unknown doc_type {doc_type!r}")
        try:
            confidence = min(max(float(answer.get("confidence", 0.0)), 0.0), 1.0)
        except (TypeError, ValueError) as exc:
            raise RemoteError(f"{SERVICE} answered a confidence that is not a number: {answer!r}") from exc
        reasoning = str(answer.get("reasoning") or "(no reasoning given)")
        if doc_type != "other" and confidence < self.threshold:
            below = f"{doc_type} {confidence:.2f} is below the threshold {self.threshold:.2f}"
            reasoning = f"other: {below}; {reasoning}"
            return Classification(
                doc_type="other",
                confidence=round(1.0 - confidence, 4),
                reasoning=reasoning,
                scores={doc_type: confidence},
                backend=self.name,
            )
        return Classification(
            doc_type=doc_type,
            confidence=confidence,
            reasoning=reasoning,
            scores={doc_type: confidence},
            backend=self.name,
        )
