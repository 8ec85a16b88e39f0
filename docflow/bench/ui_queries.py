"""The GraphQL queries the Dagster UI really makes, read from the UI bundle dagster-webserver ships: its
source maps hold the UI's TypeScript, where every query is a `gql` template whose fragments are spliced in
with `${FRAGMENT}`. A query is returned with the fragments it uses (transitively) appended, as the UI's
Apollo client sends it."""

import glob
import json
import re
from functools import cache
from pathlib import Path

_TEMPLATE = re.compile(r"gql`(.*?)`", re.DOTALL)
_SPLICE = re.compile(r"\$\{[^}]*\}")


def bundle_dir() -> Path:
    import dagster_webserver

    return Path(dagster_webserver.__file__).parent / "webapp" / "build" / "_next" / "static" / "chunks"


@cache
def _definitions() -> tuple[dict, dict]:
    """(operations by name, fragments by name) of every parseable `gql` template in the bundle."""
    from graphql import parse
    from graphql.error import GraphQLSyntaxError
    from graphql.language import FragmentDefinitionNode, OperationDefinitionNode

    operations: dict = {}
    fragments: dict = {}
    for path in sorted(glob.glob(str(bundle_dir() / "**" / "*.js.map"), recursive=True)):
        source_map = json.loads(Path(path).read_text())
        for body in source_map.get("sourcesContent") or []:
            if not body or "gql`" not in body:
                continue
            for template in _TEMPLATE.findall(body):
                try:
                    document = parse(_SPLICE.sub("", template))
                except GraphQLSyntaxError:
                    continue
                for node in document.definitions:
                    if isinstance(node, OperationDefinitionNode) and node.name:
                        operations.setdefault(node.name.value, node)
                    elif isinstance(node, FragmentDefinitionNode):
                        fragments.setdefault(node.name.value, node)
    return operations, fragments


def ui_query(name: str) -> str:
    """The text of the UI's operation `name` with the fragments it uses; KeyError if the bundle has none."""
    from graphql import print_ast
    from graphql.language import FragmentSpreadNode, Visitor, visit

    operations, fragments = _definitions()
    operation = operations[name]
    needed: dict[str, object] = {}

    class Spreads(Visitor):
        def __init__(self) -> None:
            super().__init__()
            self.names: list[str] = []

        def enter_fragment_spread(self, node: FragmentSpreadNode, *_args) -> None:
            self.names.append(node.name.value)

    todo = [operation]
    while todo:
        spreads = Spreads()
        visit(todo.pop(), spreads)
        for fragment in spreads.names:
            if fragment not in needed:
                needed[fragment] = fragments[fragment]
                todo.append(fragments[fragment])
    return "\n\n".join(print_ast(node) for node in [operation, *needed.values()])  # type: ignore[arg-type]
