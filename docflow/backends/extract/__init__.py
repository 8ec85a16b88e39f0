"""Extract backends: typed fields per document type (see `docflow.schemas`).

`local` (LocalExtractor) uses per-issuer templates from `data/templates/*.yaml`, then label/value heuristics.
"""
