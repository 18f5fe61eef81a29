"""The select stage: recipe thresholds, near-duplicate removal, final shards, report."""
