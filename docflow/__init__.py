"""docflow: a document-processing pipeline on Dagster."""
