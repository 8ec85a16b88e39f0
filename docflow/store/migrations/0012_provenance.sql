-- Provenance: where on the page each extracted value and each chunk came from. `extractions.provenance` maps
-- a field's path ("invoice_number", "line_items.0.amount") to models.FieldSource: page, box (fractions of the
-- page, origin top-left, as models.Span), the text it was read from and a confidence. `chunks.boxes` lists
-- the page boxes a chunk's text covers.
ALTER TABLE docflow.extractions ADD COLUMN IF NOT EXISTS provenance jsonb NOT NULL DEFAULT '{}';
ALTER TABLE docflow.chunks ADD COLUMN IF NOT EXISTS boxes jsonb NOT NULL DEFAULT '[]';
