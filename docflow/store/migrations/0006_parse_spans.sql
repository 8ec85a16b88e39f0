-- Text with its place on the page (models.Span), for extraction that reads layout: where a label stands
-- against its value, the merchant at the top of a receipt, the question left of its answer on a form.
ALTER TABLE docflow.parsed_documents ADD COLUMN IF NOT EXISTS spans jsonb NOT NULL DEFAULT '[]';
