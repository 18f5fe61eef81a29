"""In-context (few-shot) evaluation data: episodes built after Frozen's protocol."""
