"""Interleaved documents (text and images in page order): the docs filter and assign stages
(``filter_stage``, ``assign_stage``), their rules and the interleaved shards."""
