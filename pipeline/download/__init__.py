"""The download stage: a safety pre-filter on untrusted URLs, then img2dataset."""
