"""OpenAI (or any OpenAI-compatible server) extraction with structured outputs (extra `openai`).

The type's schema file (`docflow.schemas.get_type`, as `wire_schema` writes it for an API: plain JSON types,
labels in the descriptions) is sent as the JSON schema of the answer; a type without a schema of its own
gets the generic key-value schema (data/schemas/key_values.json): the model is asked for the document's
labels and values. The answer is validated with
`validate_fields` like every other backend's: invalid values are dropped and reported, never raised.
"""

from pathlib import Path
from typing import Any, Self

from docflow import metering
from docflow.backends.classify.remote import (
    OPENAI_KEY_ENV,
    RemoteError,
    api_error,
    from_client,
    openai_client,
    parse_json_object,
)
from docflow.models import Classification, Extraction, ParsedDocument
from docflow.schemas import get_type, validate_fields, wire_schema
from docflow.settings import Settings

SERVICE = "OpenAI"
MAX_PROMPT_CHARS = 60_000


class OpenAIExtractor:
    def __init__(self, client: Any, model: str, rules_path: Path | None = None) -> None:
        self.client = client
        self.model = model
        self.name = f"openai/{model}"
        self.rules_path = rules_path  # the types and their schema files (None: data/doc_types.yaml)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(openai_client(settings), settings.openai_model, settings.rules_path)

    def messages(self, doc_type: str, markdown: str) -> list[dict[str, str]]:
        system = (
            f"You extract fields from a document of type {doc_type!r} into the given JSON schema. "
            "Copy values as they appear; dates as ISO yyyy-mm-dd; amounts as plain numbers without thousands "
            "separators or currency symbols; currencies as ISO 4217 codes. Use null for a field the "
            "document does not state. Never invent values."
        )
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": markdown[:MAX_PROMPT_CHARS] or "(empty document)"},
        ]

    def extract(self, parsed: ParsedDocument, classification: Classification) -> Extraction:
        doc_type = classification.doc_type
        described = get_type(doc_type, self.rules_path)
        schema = described.model
        try:
            response = metering.openai_call(
                self.model,
                lambda: self.client.chat.completions.create(
                    model=self.model,
                    messages=self.messages(doc_type, parsed.markdown or parsed.text),
                    temperature=0,
                    response_format={
                        "type": "json_schema",
                        "json_schema": {"name": schema.__name__, "schema": wire_schema(described)},
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
        fields, errors = validate_fields(schema, answer)
        return Extraction(
            doc_type=doc_type,
            schema_name=schema.__name__,
            schema_version=schema.schema_version,
            fields=fields,
            validation_errors=errors,
            backend=self.name,
        )
