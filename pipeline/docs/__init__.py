"""Interleaved documents (text and images in page order): rules and helpers for the docs/ table."""
