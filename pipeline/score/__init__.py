"""The scoring stage: CLIP similarity and embeddings, and the safety and quality scorers."""
