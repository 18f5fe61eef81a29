"""Training code that consumes the curated shards (kept apart from the curation library)."""
