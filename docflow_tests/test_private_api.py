"""Dagster's private API (`dagster._*`) is imported by docflow/orchestration only, where each name is listed
in compat.TOUCHPOINTS and checked at import: an upgrade that moves a private name then fails in one place."""

import ast
from pathlib import Path

import docflow

PACKAGE = Path(docflow.__file__).parent


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
        found += [f"{where} {n}" for n in names if n.startswith("dagster._")]
    return found


def test_only_the_orchestration_package_imports_dagsters_private_api() -> None:
    outside = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if "orchestration" not in path.relative_to(PACKAGE).parts
        for hit in _private_imports(path)
    ]
    assert outside == []


def test_the_orchestration_package_does_import_it() -> None:
    # the scan above must see imports inside functions too (they are where most of them are)
    assert any(_private_imports(p) for p in (PACKAGE / "orchestration").glob("*.py"))


def test_every_private_name_the_orchestration_package_imports_is_a_listed_touchpoint() -> None:
    from docflow.orchestration import compat

    listed = {(t.module, t.name.split(".")[0]) for t in compat.TOUCHPOINTS}
    unlisted = []
    for path in sorted((PACKAGE / "orchestration").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dagster._"):
                unlisted += [
                    f"{path.name}:{node.lineno} {node.module}.{alias.name}"
                    for alias in node.names
                    if (node.module, alias.name) not in listed
                ]
    assert unlisted == []
