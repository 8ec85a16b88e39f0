"""Document types as data: an entry in the rules file (data/doc_types.yaml) names a JSON Schema file, and the
pydantic model that validates extracted fields is generated from it at load time.

A type's entry may carry, beside the classifier's keys:

    schema: schemas/invoice.json   # relative to the rules file's folder, else to data/
    schema_version: "1"            # bump when the fields change (stored with every extraction)
    view: invoices                 # the typed SQL view's name; default the type name + "s"

A schema's properties are fields; `format` names docflow's value kinds (`KINDS`): amount (a Decimal,
written as a JSON number), percent (0..100), currency (ISO 4217, upper-cased), date, date-or-text (a date
if it parses, else the text). `x-aliases` lists the labels a document prints for a field ("Inv. No.");
arrays of objects (`items` with `properties`, or a `$ref` to `$defs`) are nested models such as line items.
Every top-level field is optional in the model (an extractor may miss any); the top-level `required` fields
are the ones without which a document is of little use (the `required_fields_present` check warns). The
view's extensions (`x-column`, `x-text-column`, `x-count-column`, `x-column-order`, `x-view`) are read by
docflow.store.typed_views.
"""

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, create_model

from docflow.errors import ConfigError
from docflow.settings import data_dir


def _currency_code(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise ValueError(f"not an ISO 4217 currency code: {value!r}")
    return code


Amount = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]
Percent = Annotated[Decimal, Field(ge=0, le=100), PlainSerializer(float, return_type=float, when_used="json")]
Currency = Annotated[str, AfterValidator(_currency_code)]
# A date where the document may instead hold a clause ("the date of the Closing"): a date if it parses.
DateOrText = Annotated[dt.date | str, Field(union_mode="left_to_right")]

# docflow's value kinds, the `format` of a property: the Python type the generated model validates with
KINDS: dict[str, Any] = {
    "amount": Amount,
    "percent": Percent,
    "currency": Currency,
    "date": dt.date,
    "date-or-text": DateOrText,
}
_PLAIN: dict[str, Any] = {"string": str, "number": float, "integer": int, "boolean": bool}
KEY_VALUES_FILE = "schemas/key_values.json"  # the schema of every type without one of its own


class DocSchema(BaseModel):
    """Base of every per-type model generated from a schema file."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    schema_version: ClassVar[str] = "1"
    schema_hash: ClassVar[str] = ""  # of the schema file: an edited file changes schema_fingerprint
    required_fields: ClassVar[tuple[str, ...]] = ()  # the schema's `required`: warned about, never raised
    field_kinds: ClassVar[dict[str, str]] = {}  # field -> kind (see FieldSpec.kind): for plausibility
    item_fields: ClassVar[dict[str, tuple[str, ...]]] = {}  # array-of-objects field -> its items' fields


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


@dataclass(frozen=True)
class FieldSpec:
    """One top-level field of a type, as the extractors, the views and `docflow types` see it."""

    name: str
    kind: str  # a KINDS key, a JSON type (string, number, ...), "array" or "object"
    description: str = ""
    aliases: tuple[str, ...] = ()
    required: bool = False
    items: str | None = None  # an array's item kind: a KINDS key, a JSON type or "object"
    spec: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the property as written

    @property
    def labels(self) -> tuple[str, ...]:
        """How a document may label the field: its title, its name in words, its aliases."""
        words = self.name.replace("_", " ")
        found = [str(self.spec.get("title") or ""), words, *self.aliases]
        unique = {x.strip().lower(): x.strip() for x in reversed(found) if x.strip()}  # first spelling wins
        return tuple(reversed(unique.values()))


@dataclass(frozen=True)
class DocType:
    name: str
    description: str
    model: type[DocSchema]
    json_schema: dict[str, Any]  # the file's schema, `$ref`s resolved
    schema_file: Path | None  # None: the type uses the key-value schema
    fields: tuple[FieldSpec, ...]
    view: str | None  # the typed SQL view, None for none

    @property
    def own_schema(self) -> bool:
        return self.schema_file is not None


@dataclass(frozen=True)
class TypeRegistry:
    types: dict[str, DocType]
    key_values: DocType  # what a type without a schema of its own gets
    source: str  # the rules file
    files: tuple[tuple[str, int], ...]  # (path, mtime) of every file read: the cache's key

    @property
    def schemas(self) -> dict[str, type[DocSchema]]:
        """doc_type -> model of the types with a schema file (the `SCHEMAS` registry)."""
        return {name: t.model for name, t in self.types.items() if t.own_schema}

    def get(self, doc_type: str) -> DocType:
        t = self.types.get(doc_type)
        return t if t is not None and t.own_schema else self.key_values_for(doc_type)

    def key_values_for(self, doc_type: str) -> DocType:
        described = self.types.get(doc_type)
        return DocType(
            name=doc_type,
            description=described.description if described else "",
            model=self.key_values.model,
            json_schema=self.key_values.json_schema,
            schema_file=None,
            fields=self.key_values.fields,
            view=None,
        )

    def fingerprint(self) -> str:
        """A short hash of every model's name, version and file: changes when any schema changes."""
        parts = sorted(
            f"{name}={m.__name__}:{m.schema_version}:{m.schema_hash}" for name, m in self.schemas.items()
        )
        kv = self.key_values.model
        parts.append(f"*={kv.__name__}:{kv.schema_version}:{kv.schema_hash}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


# --- loading ----------------------------------------------------------------------------------------------
def default_rules_path() -> Path:
    return data_dir() / "doc_types.yaml"


_cache: dict[str, TypeRegistry] = {}


def load_types(rules_path: Path | str | None = None) -> TypeRegistry:
    """The types of a rules file (default data/doc_types.yaml) with their generated models; read again when
    the rules file or a schema file it names changes, else the same objects."""
    path = Path(rules_path) if rules_path else default_rules_path()
    key = str(path.resolve())
    cached = _cache.get(key)
    if cached is not None and all(_mtime(Path(p)) == m for p, m in cached.files):
        return cached
    registry = _load(path)
    _cache[key] = registry
    return registry


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def _load(path: Path) -> TypeRegistry:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot load document types from {path}: {exc}") from exc
    entries = raw.get("types") or {}
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: `types` must be a mapping")
    files = [(str(path), _mtime(path))]
    kv_file = (path.parent / KEY_VALUES_FILE).resolve()
    if not kv_file.exists():  # a rules folder without its own key-value schema uses the packaged one
        kv_file = (data_dir() / KEY_VALUES_FILE).resolve()
    key_values = _doc_type("*", "", kv_file, "1", None, files)
    types: dict[str, DocType] = {}
    for name, entry in entries.items():
        entry = entry or {}
        description = str(entry.get("description") or "")
        schema = entry.get("schema")
        if not schema:
            types[name] = DocType(name, description, key_values.model, key_values.json_schema, None, (), None)
            continue
        file = (path.parent / str(schema)).resolve()
        if not file.exists() and (data_dir() / str(schema)).exists():
            # a copy of the rules file alone (a test's, an operator's tweak) keeps the packaged schemas
            file = (data_dir() / str(schema)).resolve()
        view = entry.get("view")
        types[name] = _doc_type(
            name, description, file, str(entry.get("schema_version", "1")), view, files, key_values
        )
    return TypeRegistry(types, key_values, str(path), tuple(files))


def _doc_type(
    name: str,
    description: str,
    file: Path,
    version: str,
    view: Any,
    files: list[tuple[str, int]],
    key_values: DocType | None = None,
) -> DocType:
    files.append((str(file), _mtime(file)))
    try:
        text = file.read_text(encoding="utf-8")
        schema = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"type {name!r}: cannot read its schema {file}: {exc}") from exc
    if key_values is not None and file == key_values.schema_file:
        return DocType(name, description, key_values.model, key_values.json_schema, file, (), None)
    try:
        resolved = _resolve_refs(schema, schema.get("$defs", {}))
        model = build_model(resolved, name)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"type {name!r}: schema {file} is not usable: {exc}") from exc
    model.schema_version = version
    model.schema_hash = hashlib.sha256(text.encode()).hexdigest()[:12]
    model.required_fields = tuple(resolved.get("required", ()))
    model.field_kinds = {n: kind_of(p) for n, p in resolved["properties"].items()}
    model.item_fields = {
        n: tuple(p["items"]["properties"])
        for n, p in resolved["properties"].items()
        if isinstance(p.get("items"), dict) and "properties" in p["items"]
    }
    specs = tuple(_field_spec(n, p, n in model.required_fields) for n, p in resolved["properties"].items())
    if view is None:
        view = False if schema.get("x-view") is False else default_view_name(name)
    return DocType(name, description, model, resolved, file, specs, str(view) if view else None)


def default_view_name(doc_type: str) -> str:
    """invoice -> invoices, purchase_order -> purchase_orders, address -> addresses."""
    stem = re.sub(r"\W+", "_", doc_type.lower()).strip("_")
    return stem + ("es" if stem.endswith(("s", "x", "ch", "sh")) else "s")


def _resolve_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = defs[ref.removeprefix("#/$defs/")]
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _resolve_refs(merged, defs)
        return {k: _resolve_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_resolve_refs(v, defs) for v in node]
    return node


def _field_spec(name: str, prop: dict[str, Any], required: bool) -> FieldSpec:
    items = prop.get("items") if isinstance(prop.get("items"), dict) else None
    return FieldSpec(
        name=name,
        kind=kind_of(prop),
        description=str(prop.get("description") or ""),
        aliases=tuple(str(a) for a in prop.get("x-aliases", ())),
        required=required,
        items=kind_of(items) if items is not None else None,
        spec=prop,
    )


def kind_of(prop: dict[str, Any]) -> str:
    fmt = prop.get("format")
    if fmt in KINDS:
        return str(fmt)
    if "properties" in prop:
        return "object"
    kind = prop.get("type", "string")
    return str(kind) if isinstance(kind, str) else "string"


# --- the generated models ---------------------------------------------------------------------------------
def camel(name: str) -> str:
    """invoice -> Invoice, purchase_order -> PurchaseOrder, "Line item" -> LineItem; LineItem stays."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    return "".join(p[0].upper() + p[1:] for p in parts) or "Doc"


def build_model(schema: dict[str, Any], doc_type: str) -> type[DocSchema]:
    """The pydantic model of a (ref-resolved) JSON schema: every top-level field optional."""
    name = camel(str(schema.get("title") or doc_type))  # a model name APIs accept as a schema name
    fields: dict[str, Any] = {}
    for field_name, prop in schema.get("properties", {}).items():
        annotation = _annotation(prop, f"{name}_{field_name}")
        fields[field_name] = (annotation | None, _field(prop, None))
    return create_model(name, __base__=DocSchema, __doc__=schema.get("description"), **fields)


def _item_model(schema: dict[str, Any], fallback: str) -> type[BaseModel]:
    name = camel(str(schema.get("title") or fallback))
    required = set(schema.get("required", ()))
    fields: dict[str, Any] = {}
    for field_name, prop in schema.get("properties", {}).items():
        annotation = _annotation(prop, f"{name}_{field_name}")
        if field_name in required:
            fields[field_name] = (annotation, _field(prop, ...))
        else:
            fields[field_name] = (annotation | None, _field(prop, None))
    return create_model(name, __base__=_Item, **fields)


def _field(prop: dict[str, Any], default: Any) -> Any:
    extra: dict[str, Any] = {}
    if prop.get("description"):
        extra["description"] = prop["description"]
    if prop.get("pattern") and kind_of(prop) == "string":
        extra["pattern"] = prop["pattern"]
    return Field(default, **extra)


def _annotation(prop: dict[str, Any], name: str) -> Any:
    if "anyOf" in prop:
        options = [_annotation(p, name) for p in prop["anyOf"]]
        union = options[0]
        for option in options[1:]:
            union = union | option
        return union
    kind = kind_of(prop)
    if kind in KINDS:
        return KINDS[kind]
    if kind in _PLAIN:
        return _PLAIN[kind]
    if kind == "array":
        items = prop.get("items")
        return list[_annotation(items, name) if isinstance(items, dict) else Any]  # type: ignore[misc]
    if kind == "object":
        if "properties" in prop:
            return _item_model(prop, name)
        values = prop.get("additionalProperties")
        return dict[str, _annotation(values, name) if isinstance(values, dict) else Any]  # type: ignore[misc]
    raise ValueError(f"unknown type {kind!r} of {name}")


# --- the schema remote backends receive -------------------------------------------------------------------
_WIRE: dict[str, dict[str, Any]] = {
    "amount": {"type": "number"},
    "percent": {"type": "number", "minimum": 0, "maximum": 100},
    "currency": {"type": "string", "description": "ISO 4217 code, e.g. EUR"},
    "date": {"type": "string", "description": "ISO date yyyy-mm-dd"},
    "date-or-text": {"type": "string", "description": "ISO date yyyy-mm-dd, or the text that defines it"},
}


def wire_schema(doc_type: DocType) -> dict[str, Any]:
    """The type's schema file as a remote extraction API takes it: plain JSON Schema types (docflow's
    formats become types and descriptions), the labels a document prints in each description, no `x-`
    extensions, every field nullable."""
    return _wire(doc_type.json_schema, top=True)


def _wire(node: dict[str, Any], top: bool = False) -> dict[str, Any]:
    if "anyOf" in node:
        return {"anyOf": [_wire(p) for p in node["anyOf"]]}
    out: dict[str, Any] = {}
    kind = kind_of(node)
    if kind in _WIRE:
        out.update(_WIRE[kind])
    elif kind in ("object",) or "properties" in node:
        out["type"] = "object"
    else:
        out["type"] = node.get("type", "string")
    notes = [str(node["description"])] if node.get("description") else []
    if kind in _WIRE and "description" in _WIRE[kind]:
        notes.append(_WIRE[kind]["description"])
    if node.get("x-aliases"):
        notes.append("Printed as: " + ", ".join(map(str, node["x-aliases"])))
    if notes:
        out["description"] = ". ".join(n.rstrip(".") for n in notes)
    if node.get("pattern"):
        out["pattern"] = node["pattern"]
    if top and node.get("title"):
        out["title"] = node["title"]
    if "properties" in node:
        out["properties"] = {k: _wire(v) for k, v in node["properties"].items()}
        if node.get("required") and not top:  # a top-level field may be missing from any document
            out["required"] = list(node["required"])
    if isinstance(node.get("items"), dict):
        out["items"] = _wire(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _wire(node["additionalProperties"])
    return out
