import dagster as dg

# One partition per document; the key is the document id (tenant + content hash, see docflow.bucket).
documents = dg.DynamicPartitionsDefinition(name="documents")
