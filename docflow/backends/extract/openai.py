"""OpenAI (or any OpenAI-compatible server) extraction with structured outputs (extra `openai`).

The type's schema file (`docflow.schemas.get_type`, as `wire_schema` writes it for an API: plain JSON types,
labels in the descriptions) is sent as the JSON schema of the answer, which is validated with
`validate_fields` like every other backend's: invalid values are dropped and reported, never raised.

A type without a schema file of its own gets a schema generated for it: the model is first asked for the
key fields of such a document from the type's description (once per type and process, so that the
documents of one type share their fields, as LlamaExtract's generated schemas do), and the fields are then
extracted with it and stored as returned (schema name `generated/<type>`).
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
MAX_GENERATED_FIELDS = 20
_KINDS = {"string": {"type": ["string", "null"]}, "number": {"type": ["number", "null"]}}
_KINDS["date"] = {"type": ["string", "null"], "description": "ISO date yyyy-mm-dd"}
# The answer the model gives when asked for a type's fields: names, kinds and what each field holds.
FIELDS_SCHEMA = {
    "type": "object",
    "properties": {
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "snake_case field name"},
                    "kind": {"type": "string", "enum": sorted(_KINDS)},
                    "description": {"type": "string"},
                },
                "required": ["name", "kind", "description"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["fields"],
    "additionalProperties": False,
}


class OpenAIExtractor:
    def __init__(self, client: Any, model: str, rules_path: Path | None = None) -> None:
        self.client = client
        self.model = model
        self.name = f"openai/{model}"
        self.rules_path = rules_path  # the types and their schema files (None: data/doc_types.yaml)
        self._generated: dict[str, dict[str, Any]] = {}  # doc type -> its generated JSON schema

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

    def _ask(self, messages: list[dict[str, str]], name: str, schema: dict[str, Any]) -> dict[str, Any]:
        """One structured-output call; the answer's JSON object."""
        try:
            response = metering.openai_call(
                self.model,
                lambda: self.client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    temperature=0,
                    response_format={"type": "json_schema", "json_schema": {"name": name, "schema": schema}},
                ),
            )
        except Exception as exc:
            if from_client(exc, "openai"):
                raise api_error(exc, SERVICE, OPENAI_KEY_ENV) from exc
            raise
        if not response.choices:
            raise RemoteError(f"{SERVICE} answered no choices")
        return parse_json_object(response.choices[0].message.content, SERVICE)

    def generated_schema(self, doc_type: str, description: str) -> dict[str, Any]:
        """A JSON schema for a type without a schema file, asked of the model once per process."""
        if doc_type not in self._generated:
            prompt = (
                f"List the key fields to extract from a document of type {doc_type!r} ({description}): "
                f"at most {MAX_GENERATED_FIELDS} fields that identify and summarise such a document, each "
                "with a snake_case name, its kind and what it holds."
            )
            answer = self._ask([{"role": "user", "content": prompt}], "fields", FIELDS_SCHEMA)
            properties: dict[str, Any] = {}
            for spec in answer.get("fields") or []:
                name = str(spec.get("name", "")).strip()
                if name.isidentifier() and spec.get("kind") in _KINDS:
                    kind = _KINDS[spec["kind"]]
                    notes = ". ".join(
                        n for n in (str(spec.get("description", "")), kind.get("description")) if n
                    )
                    properties[name] = {"type": kind["type"], **({"description": notes} if notes else {})}
            if not properties:
                raise RemoteError(f"{SERVICE} generated no usable field for {doc_type!r}: {answer!r}"[:300])
            properties = dict(list(properties.items())[:MAX_GENERATED_FIELDS])
            self._generated[doc_type] = {
                "type": "object",
                "properties": properties,
                "required": list(properties),  # structured outputs: every field present, null when absent
                "additionalProperties": False,
            }
        return self._generated[doc_type]

    def extract(self, parsed: ParsedDocument, classification: Classification) -> Extraction:
        doc_type = classification.doc_type
        described = get_type(doc_type, self.rules_path)
        messages = self.messages(doc_type, parsed.markdown or parsed.text)
        if not described.own_schema:
            generated = self.generated_schema(doc_type, described.description)
            answer = self._ask(messages, "generated", generated)
            fields = {k: v for k, v in answer.items() if k in generated["properties"] and v is not None}
            return Extraction(
                doc_type=doc_type,
                schema_name=f"generated/{doc_type}",
                schema_version="generated",
                fields=fields,
                backend=self.name,
            )
        schema = described.model
        answer = self._ask(messages, schema.__name__, wire_schema(described))
        fields, errors = validate_fields(schema, answer)
        return Extraction(
            doc_type=doc_type,
            schema_name=schema.__name__,
            schema_version=schema.schema_version,
            fields=fields,
            validation_errors=errors,
            backend=self.name,
        )
