"""Classify backends: a document's type, a confidence and human-readable reasoning.

`local` is `RuleClassifier` (rules in data/doc_types.yaml); the registry lives in docflow.backends.
"""
