"""Vector index: one interface (`VectorIndex`), an embedded backend (`LocalIndex`)."""
