"""Local rule-based classifier: weighted keyword and regex cues from `data/doc_types.yaml`.

No model, no network. Every type in the rules file competes on the same footing, so a new type is a new
entry in the YAML and nothing else. How a text is scored:

1. Each cue (keyword phrase or regex) counts its hits, case-insensitively; keywords match whole words.
   Hits are capped (`cue_cap`) and hits after the first add only `repeat_factor` of the weight, so one
   repeated word cannot dominate. A cue also found in the first `head_chars` characters (the first page,
   roughly: titles and headers live there) adds `head_bonus` times its weight.
2. Negative cues subtract the same way; a filename hint adds `filename_weight` (`filename_only_weight` when no
   text was read: then the name is all there is); a content type listed by a
   type (e-mail, slides, spreadsheets are `other`) adds `content_type_weight`. Scores floor at 0.
   `LocalClassifier` adds a fifth kind of evidence: the cosine similarity of the document's opening text to
   each type's `description` with the local embedding model; a type whose similarity stands above the mean
   over all types gets `embed_weight * (similarity - mean)` points (see `LocalClassifier`).
3. Scores become an evidence mass `exp(score / temperature) - 1` per type (0 for no evidence). Confidence
   of a type is its mass over the sum of all masses plus `unknown_mass`, the mass of "no idea": a text with
   little evidence gets a low confidence whatever wins, and a text where two types tie splits it.
4. Below `threshold` (or when the winner is `other`) the result is `other`, with `other`'s own confidence.
5. Sibling types describe one paper from two angles (a paid invoice is also a receipt). When the winner is
   a sibling of another type (`siblings` in either type's entry) that has at least `sibling_min_score` cue
   points of its own, and the file name names that type and not the winner, the name decides: the two
   swap places (and confidences). The reasoning says so.
"""

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from docflow.backends.classify.learned import LinearModel, blend, decide, featurize
from docflow.errors import ConfigError, UnsupportedFormat
from docflow.models import Classification, RawFile
from docflow.settings import Settings, data_dir

FALLBACK = "other"
MAX_TEXT_CHARS = 50_000  # classification needs the beginning of a document, not all of it


# --- the rules file -----------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatternSpec(_Strict):
    name: str
    regex: str
    weight: float = 1.0


class NegativeSpec(_Strict):
    keywords: dict[str, float] = Field(default_factory=dict)
    patterns: list[PatternSpec] = Field(default_factory=list)


class TypeSpec(_Strict):
    description: str
    keywords: dict[str, float] = Field(default_factory=dict)
    patterns: list[PatternSpec] = Field(default_factory=list)
    negative: NegativeSpec = Field(default_factory=NegativeSpec)
    filename: list[str] = Field(default_factory=list)
    content_types: list[str] = Field(default_factory=list)  # prefixes, e.g. "message/"
    siblings: list[str] = Field(default_factory=list)  # types the file name may decide against (see 5.)
    priority: int = Field(0, ge=-100, le=100)  # of the runs requested once the type is known
    # the type's fields (docflow.schemas.types reads these): a JSON Schema file, its version, its SQL view
    schema_file: str | None = Field(None, alias="schema")
    schema_version: str | None = None
    view: str | None = None


class ScoringParams(_Strict):
    cue_cap: int = Field(3, ge=1)
    repeat_factor: float = Field(0.5, ge=0.0)
    head_chars: int = Field(2000, ge=0)
    head_bonus: float = Field(0.5, ge=0.0)
    filename_weight: float = Field(2.0, ge=0.0)
    filename_only_weight: float = Field(2.0, ge=0.0)  # the hint's weight when there is no text
    content_type_weight: float = Field(6.0, ge=0.0)
    temperature: float = Field(3.0, gt=0.0)
    unknown_mass: float = Field(6.0, gt=0.0)
    sibling_min_score: float = Field(8.0, ge=0.0)  # own cue points a sibling needs to be named the type


class RulesFile(_Strict):
    version: int = 1
    scoring: ScoringParams = Field(default_factory=ScoringParams)
    types: dict[str, TypeSpec]


# --- compiled rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cue:
    label: str  # how the reasoning names it: "'invoice number'" or "regex total-line"
    regex: re.Pattern[str]
    weight: float


@dataclass(frozen=True)
class TypeRules:
    name: str
    description: str
    cues: tuple[Cue, ...]
    negatives: tuple[Cue, ...]
    filename_hints: tuple[str, ...]
    content_types: tuple[str, ...] = ()
    siblings: tuple[str, ...] = ()
    priority: int = 0


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per version of a file
class RuleSet:
    types: dict[str, TypeRules]
    scoring: ScoringParams
    source: str = ""

    @property
    def descriptions(self) -> dict[str, str]:
        """One line per type, for backends that classify by similarity or with an LLM."""
        return {name: rules.description for name, rules in self.types.items()}

    def priority(self, doc_type: str | None) -> int:
        """The type's run priority (0 for a type the rules do not name, or no type yet)."""
        rules = self.types.get(doc_type or "")
        return rules.priority if rules else 0


def phrase_regex(phrase: str) -> re.Pattern[str]:
    """Case-insensitive whole-word regex for a phrase; any run of whitespace matches between words."""
    words = phrase.split()
    if not words:
        raise ValueError("empty keyword")
    body = r"\s+".join(re.escape(word) for word in words)
    start = r"(?<!\w)" if re.match(r"\w", words[0]) else ""
    end = r"(?!\w)" if re.search(r"\w$", words[-1]) else ""
    return re.compile(start + body + end, re.IGNORECASE)


def _compile_cues(keywords: dict[str, float], patterns: list[PatternSpec], where: str) -> tuple[Cue, ...]:
    cues = [Cue(f"'{phrase}'", phrase_regex(phrase), weight) for phrase, weight in keywords.items()]
    for pattern in patterns:
        try:
            regex = re.compile(pattern.regex, re.IGNORECASE | re.MULTILINE)
        except re.error as exc:
            raise ConfigError(f"{where}: bad regex {pattern.name!r}: {exc}") from exc
        cues.append(Cue(f"regex {pattern.name}", regex, pattern.weight))
    return tuple(cues)


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "-", text.lower()).strip("-")


def compile_rules(spec: RulesFile, source: str = "") -> RuleSet:
    types: dict[str, TypeRules] = {}
    for name, t in spec.types.items():
        where = f"{source or 'rules'}: type {name!r}"
        types[name] = TypeRules(
            name=name,
            description=t.description,
            cues=_compile_cues(t.keywords, t.patterns, where),
            negatives=_compile_cues(t.negative.keywords, t.negative.patterns, where + " (negative)"),
            filename_hints=tuple(_slug(hint) for hint in t.filename if _slug(hint)),
            content_types=tuple(ct.strip().lower() for ct in t.content_types if ct.strip()),
            siblings=tuple(t.siblings),
            priority=t.priority,
        )
    return RuleSet(types=types, scoring=spec.scoring, source=source)


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rules file; any problem is a `ConfigError` naming the file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        spec = RulesFile.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"cannot load classification rules from {path}: {exc}") from exc
    return compile_rules(spec, source=str(path))


def current_rules(rules_path: Path | str | None = None) -> RuleSet:
    """The rules file in effect (`rules_path`, else data/doc_types.yaml), read again when it changes: for
    callers outside the classifier that look something up often (sensors, search)."""
    path = Path(rules_path) if rules_path else data_dir() / "doc_types.yaml"
    try:
        version = path.stat().st_mtime_ns
    except OSError:
        version = 0  # load_rules reports the missing file
    return _rules_at(str(path), version)


@functools.lru_cache(maxsize=4)  # keyed by the file's modification time too: an edited file is read again
def _rules_at(path: str, version: int) -> RuleSet:
    return load_rules(Path(path))


# --- scoring ------------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]{2,}")  # a text without one is 'no text' (a scan without OCR)
_LETTER_SPACED = re.compile(r"(?<!\S)(?:[^\W\d_] ){3,}[^\W\d_](?!\S)")


def normalize_text(text: str) -> str:
    """Undo letter-spaced headings ("I N V O I C E" -> "INVOICE") that PDFs often produce."""
    return _LETTER_SPACED.sub(lambda m: m.group(0).replace(" ", ""), text[:MAX_TEXT_CHARS])


@dataclass(frozen=True)
class CueHit:
    label: str
    count: int
    points: float


@dataclass(frozen=True)
class TypeScore:
    name: str
    score: float
    hits: tuple[CueHit, ...]
    against: tuple[CueHit, ...]
    filename_hint: str | None
    content_type: str | None = None
    extra: tuple[CueHit, ...] = ()  # evidence from outside the rules file (embedding similarity)


def _count(regex: re.Pattern[str], text: str, cap: int) -> int:
    count = 0
    for _ in regex.finditer(text):
        count += 1
        if count >= cap:
            break
    return count


def _cue_hits(cues: tuple[Cue, ...], text: str, head: str, p: ScoringParams) -> tuple[CueHit, ...]:
    hits = []
    for cue in cues:
        count = _count(cue.regex, text, p.cue_cap)
        if not count:
            continue
        points = cue.weight * (1 + p.repeat_factor * (count - 1))
        if head and cue.regex.search(head):
            points += cue.weight * p.head_bonus
        hits.append(CueHit(cue.label, count, points))
    return tuple(sorted(hits, key=lambda h: -h.points))


def _filename_hint(hints: tuple[str, ...], filename: str) -> str | None:
    slug = _slug(Path(filename).stem) if filename else ""
    for hint in hints:
        if re.search(rf"(?:^|-){re.escape(hint)}s?(?:-|$)", slug):
            return hint
    return None


def _content_type_hint(prefixes: tuple[str, ...], content_type: str) -> str | None:
    base = content_type.split(";", 1)[0].strip().lower()
    return base if base and any(base.startswith(prefix) for prefix in prefixes) else None


def score_type(
    rules: TypeRules,
    text: str,
    filename: str,
    p: ScoringParams,
    content_type: str = "",
    extra: tuple[CueHit, ...] = (),
) -> TypeScore:
    head = text[: p.head_chars]
    hits = _cue_hits(rules.cues, text, head, p)
    against = _cue_hits(rules.negatives, text, head, p)
    hint = _filename_hint(rules.filename_hints, filename)
    ct_hint = _content_type_hint(rules.content_types, content_type)
    total = sum(h.points for h in hits) - sum(h.points for h in against) + sum(h.points for h in extra)
    if hint:
        total += p.filename_weight if _WORD.search(text) else p.filename_only_weight
    total += p.content_type_weight if ct_hint else 0.0
    return TypeScore(rules.name, max(total, 0.0), hits, against, hint, ct_hint, extra)


def confidences(scores: dict[str, float], p: ScoringParams) -> dict[str, float]:
    """Evidence mass exp(s/T) - 1 per type, normalised with the 'no idea' mass; stable for big scores."""
    if not scores:
        return {}
    top = max(s / p.temperature for s in scores.values())
    scale = math.exp(-top)
    masses = {name: math.exp(s / p.temperature - top) - scale for name, s in scores.items()}
    total = sum(masses.values()) + p.unknown_mass * scale
    return {name: min(max(mass / total, 0.0), 1.0) for name, mass in masses.items()}


def _describe(ts: TypeScore, limit: int = 6) -> str:
    parts = [h.label + (f" x{h.count}" if h.count > 1 else "") for h in ts.hits[:limit]]
    if len(ts.hits) > limit:
        parts.append(f"+{len(ts.hits) - limit} more")
    text = "matched " + ", ".join(parts) if parts else "no cue matched"
    if ts.filename_hint:
        text += f"; filename hint '{ts.filename_hint}'"
    if ts.content_type:
        text += f"; content type {ts.content_type}"
    for hit in ts.extra:
        text += f"; {hit.label}"
    if ts.against:
        text += "; against: " + ", ".join(h.label for h in ts.against[:3])
    return text


# --- text of scans -------------------------------------------------------------------------------------


def ocr_first_page(data: bytes, content_type: str) -> str:
    """The OCR text of the first page of a scanned PDF or of an image; "" when OCR is unavailable or fails.

    A photo of a receipt or a scanned form has no text layer, and its file name rarely says what it is: the
    words on its first page are the evidence. OCR runs on one page only (about a second), and any failure
    leaves the classifier with the file name, as before.
    """
    from docflow.backends.parse.local import IMAGES  # the parse backend owns text extraction
    from docflow.sniff import PDF

    base = content_type.split(";", 1)[0].strip().lower()
    if base != PDF and base not in IMAGES:
        return ""
    try:
        from docflow.backends.parse import ocr

        if base == PDF:
            from docflow.backends.parse.pdf import render_page
            from docflow.sniff import open_pdf

            with open_pdf(data) as document:
                image = render_page(document, 0)
        else:
            image = ocr.open_image(data).convert("RGB")
            scale = min(1.0, ocr.MAX_SIDE / max(image.size))
            if scale < 1.0:
                image = image.resize((int(image.width * scale), int(image.height * scale)))
        return "\n".join(line[0] for line in ocr.ocr_lines(image))
    except Exception:  # OCR is a best-effort extra here; the parse step reports real problems
        return ""


# --- the backend --------------------------------------------------------------------------------------


class RuleClassifier:
    """Classify documents by weighted cues read from a YAML rules file (see module docstring)."""

    name = "local/rules"

    def __init__(self, rules: RuleSet, threshold: float = 0.35, ocr: bool = True) -> None:
        if not rules.types:
            raise ConfigError(f"no document types in {rules.source or 'rules'}")
        self.rules = rules
        self.threshold = threshold
        self.ocr = ocr  # OCR the first page of a scan or photo that has no text layer

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        path = settings.rules_path or data_dir() / "doc_types.yaml"
        return cls(load_rules(path), threshold=settings.classify_threshold)

    def classify(self, data: bytes, raw: RawFile) -> Classification:
        """Classify from the first pages' text; raises `BadDocument` when the bytes are unreadable.

        A format the local parser cannot read (docx, e-mail... which a remote parse backend may handle) is
        classified from its file name alone, which keeps its confidence low, and the reasoning says so.
        """
        text, ocr, note = self.read_text(data, raw)
        result = self.classify_text(text, filename=raw.filename, content_type=raw.content_type, ocr=ocr)
        return result.model_copy(update={"reasoning": result.reasoning + note}) if note else result

    def read_text(self, data: bytes, raw: RawFile) -> tuple[str, bool, str]:
        """(text, read by OCR, a note for the reasoning): the first pages, or page 1 by OCR for a scan."""
        from docflow.backends.parse.local import quick_text  # the parse backend owns text extraction

        try:
            text = quick_text(data, raw.content_type)
        except UnsupportedFormat as exc:
            return "", False, f" (no text read: {exc})"
        if self.ocr and not _WORD.search(text) and (ocred := ocr_first_page(data, raw.content_type)):
            return ocred, True, " (text of page 1 by OCR)"
        return text, False, ""

    def score_all(
        self, text: str, filename: str, content_type: str, extra: dict[str, CueHit]
    ) -> dict[str, TypeScore]:
        p = self.rules.scoring
        return {
            name: score_type(rules, text, filename, p, content_type, (extra[name],) if name in extra else ())
            for name, rules in self.rules.types.items()
        }

    def extra_evidence(self, text: str) -> dict[str, CueHit]:
        """Evidence per type beyond the rules file (none here; `LocalClassifier` adds embeddings)."""
        return {}

    def classify_text(
        self, text: str, filename: str = "", content_type: str = "", ocr: bool = False
    ) -> Classification:
        p = self.rules.scoring
        text = normalize_text(text)
        scored = self.score_all(text, filename, content_type, self.extra_evidence(text))
        conf = confidences({name: ts.score for name, ts in scored.items()}, p)
        ranked = sorted(conf, key=lambda name: -conf[name])
        named = self._named_sibling(scored, ranked[0])
        if named is not None:
            conf[named], conf[ranked[0]] = conf[ranked[0]], conf[named]
            ranked = sorted(conf, key=lambda name: -conf[name])
        best = ranked[0]
        runner_up = ranked[1] if len(ranked) > 1 else None
        if best != FALLBACK and conf[best] >= self.threshold:
            doc_type, reasoning = best, f"{best}: {_describe(scored[best])}"
            if named is not None:
                reasoning += f"; named by the file name over its sibling {ranked[1]}"
        else:
            doc_type, reasoning = FALLBACK, self._fallback_reason(scored, conf, best)
        if best == doc_type and runner_up is not None and scored[runner_up].score > 0:
            reasoning += f"; runner-up {runner_up} {conf[runner_up]:.2f}"
        return self._result(doc_type, conf, reasoning)

    def _result(self, doc_type: str, conf: dict[str, float], reasoning: str) -> Classification:
        return Classification(
            doc_type=doc_type,
            confidence=round(conf.get(doc_type, 0.0), 4),
            reasoning=reasoning,
            scores={name: round(c, 4) for name, c in conf.items()},
            backend=self.name,
        )

    def _named_sibling(self, scored: dict[str, TypeScore], best: str) -> str | None:
        """A sibling of `best` that the file name names (and not `best`), with enough cues of its own."""
        if scored[best].filename_hint:
            return None
        types = self.rules.types
        for name, ts in scored.items():
            related = name in types[best].siblings or best in types[name].siblings
            own = sum(h.points for h in ts.hits) - sum(h.points for h in ts.against)
            if name != best and related and ts.filename_hint and own >= self.rules.scoring.sibling_min_score:
                return name
        return None

    def _fallback_reason(self, scored: dict[str, TypeScore], conf: dict[str, float], best: str) -> str:
        if not any(ts.score for ts in scored.values()):
            return f"{FALLBACK}: no cue of any type matched"
        if best == FALLBACK:
            return f"{FALLBACK}: {_describe(scored[FALLBACK])}"
        return (
            f"{FALLBACK}: no type reached the threshold {self.threshold:.2f}; "
            f"best {best} {conf[best]:.2f} ({_describe(scored[best])})"
        )


# --- rules + embeddings -------------------------------------------------------------------------------


def opening_windows(text: str, windows: int = 3, size: int = 900) -> list[str]:
    """The first `windows` slices of `size` characters of the whitespace-squashed text (MiniLM reads ~1k)."""
    flat = " ".join(text.split())
    parts = [flat[i * size : (i + 1) * size] for i in range(windows)]
    return [part for part in parts if len(part.strip()) >= 40]


class LocalClassifier(RuleClassifier):
    """The rules, the local embedding model and a learned model over both: the default `local` backend.

    Without a learned model: the opening text (three windows of ~900 characters, the span MiniLM reads) is
    embedded once, the windows' mean is compared with each type's `description` by cosine similarity, and a
    type that stands above the mean similarity over all types gets `embed_weight * (similarity - mean)`
    points on top of its rule score; `confidence` stays the share of evidence mass (see the module
    docstring). `embed_weight = 0` gives the plain rules.

    With a learned model (`data/classifier.json`, see `learned`): the rule scores, the description
    similarities and the shape of the text are its features, and the confidences are its probabilities
    blended with the rules' own (`model_weight` of the model's): the model knows the dev set's sources, the
    rules know documents in general (a born-digital receipt, when every receipt it learned from was a
    photo). The reasoning names the model's strongest evidence beside the rule cues. The model is used only
    when it knows every type of the rules file, so a type added to the YAML works (by its rules) before the
    model is retrained.
    """

    name = "local/rules+minilm"

    def __init__(
        self,
        rules: RuleSet,
        embedder: Any,
        threshold: float = 0.35,
        embed_weight: float = 15.0,
        model: LinearModel | None = None,
        model_weight: float = 0.7,
    ):
        super().__init__(rules, threshold=threshold)
        self.model_weight = model_weight
        self.embedder = embedder
        self.embed_weight = embed_weight
        self._type_vectors: list[list[float]] | None = None
        if embedder is not None:
            self.name = f"local/rules+{embedder.name.rsplit('/', 1)[-1]}"
        self.model = model if model is not None and set(rules.types) <= set(model.types) else None
        if self.model is not None:
            self.name += "+learned"

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        path = settings.rules_path or data_dir() / "doc_types.yaml"
        rules = load_rules(path)
        embedder = None
        if settings.classify_embed_weight > 0:
            from docflow.backends import get_embedder  # loaded once per process, shared with the embed asset

            embedder = get_embedder(settings)
        model_path = settings.classifier_model_path or data_dir() / "classifier.json"
        model = LinearModel.load(model_path) if settings.classify_learned and model_path.exists() else None
        return cls(
            rules,
            embedder,
            settings.classify_threshold,
            settings.classify_embed_weight,
            model,
            settings.classify_model_weight,
        )

    def opening_embedding(self, text: str) -> list[float] | None:
        """The normalised mean embedding of the opening windows (None without text or model)."""
        windows = opening_windows(text)
        if self.embedder is None or not windows:
            return None
        vectors = self.embedder.embed(windows)
        mean = [sum(col) / len(vectors) for col in zip(*vectors, strict=True)]
        norm = math.sqrt(sum(x * x for x in mean)) or 1.0
        return [x / norm for x in mean]

    def similarities(self, embedding: list[float] | None) -> dict[str, float]:
        """Cosine similarity of the opening text's embedding to each type's description."""
        if embedding is None:
            return {}
        names = list(self.rules.types)
        if self._type_vectors is None:
            self._type_vectors = self.embedder.embed([self.rules.types[n].description for n in names])
        sims = {}
        for name, vec in zip(names, self._type_vectors, strict=True):
            vnorm = math.sqrt(sum(x * x for x in vec)) or 1.0
            sims[name] = sum(a * b for a, b in zip(embedding, vec, strict=True)) / vnorm
        return sims

    def _similarity_evidence(self, sims: dict[str, float]) -> dict[str, CueHit]:
        if not sims:
            return {}
        mean = sum(sims.values()) / len(sims)
        out = {}
        for name, sim in sims.items():
            points = self.embed_weight * (sim - mean)
            if points > 0.05:
                out[name] = CueHit(f"description similarity {sim:.2f} (mean {mean:.2f})", 1, points)
        return out

    def extra_evidence(self, text: str) -> dict[str, CueHit]:
        return self._similarity_evidence(self.similarities(self.opening_embedding(text)))

    def features(
        self, text: str, filename: str, content_type: str, ocr: bool
    ) -> tuple[dict[str, float], dict[str, float]]:
        """The learned model's features of a document (see `learned.featurize`) and the rules' confidences."""
        feats, scored = self._features(normalize_text(text), filename, content_type, ocr)
        return feats, self.rule_confidences(scored)

    def rule_confidences(self, scored: dict[str, TypeScore]) -> dict[str, float]:
        return confidences({name: ts.score for name, ts in scored.items()}, self.rules.scoring)

    def _features(
        self, text: str, filename: str, content_type: str, ocr: bool
    ) -> tuple[dict[str, float], dict[str, TypeScore]]:
        sims = self.similarities(self.opening_embedding(text))
        scored = self.score_all(text, filename, content_type, self._similarity_evidence(sims))
        scores = {name: ts.score for name, ts in scored.items()}
        return featurize(text, ocr, scores, sims), scored

    def classify_text(
        self, text: str, filename: str = "", content_type: str = "", ocr: bool = False
    ) -> Classification:
        if self.model is None:
            return super().classify_text(text, filename, content_type, ocr)
        feats, scored = self._features(normalize_text(text), filename, content_type, ocr)
        probs = blend(self.model.probabilities(feats), self.rule_confidences(scored), self.model_weight)
        ranked = sorted(probs, key=lambda name: -probs[name])
        best = ranked[0]
        doc_type = decide(probs, self.threshold, FALLBACK)
        evidence = ", ".join(self.model.evidence(feats, best)) or "none"
        reasoning = f"{doc_type}: {best} {probs[best]:.2f} by the learned model and the rules"
        reasoning += f" (model's strongest: {evidence})"
        if best in scored:
            reasoning += f"; rules: {_describe(scored[best])}"
        if doc_type != best:
            reasoning += f"; below the threshold {self.threshold:.2f}"
        runner_up = ranked[1] if len(ranked) > 1 else None
        if runner_up is not None:
            reasoning += f"; runner-up {runner_up} {probs[runner_up]:.2f}"
        return self._result(doc_type, probs, reasoning)
