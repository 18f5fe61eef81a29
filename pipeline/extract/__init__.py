"""The extract stage: WARC records -> HTML payloads -> image-text pairs and documents."""
