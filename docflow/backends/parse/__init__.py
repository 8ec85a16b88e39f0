"""Parse backends: bytes + RawFile -> ParsedDocument (markdown, plain text, blocks with pages)."""
