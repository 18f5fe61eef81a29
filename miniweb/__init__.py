"""The mini web: a deterministic synthetic crawl with ground truth, for tests and the demo.

The machine has no internet, so the pipeline is exercised end to end against a small web of
its own: ``build`` writes HTML pages (as a WARC file, like Common Crawl's) whose images are real
photos, drawn shapes with exact captions, duplicates, watermarks, junk alt text, other
languages and hostile URLs, and records the truth of every image reference in
``manifest.jsonl``; ``serve`` serves the images on 127.0.0.1 with the hostile behaviours.

    port = free_port()
    manifest = build(out_dir, seed=0, port=port)
    with serve(out_dir, port=port) as server:
        ...  # extract out_dir/crawl.warc.gz, download the pairs, compare with manifest.samples
"""

from vlcurate.miniweb.build import DEFAULT_PORT, build
from vlcurate.miniweb.hostile import NOAI_HEADER
from vlcurate.miniweb.manifest import (
    EXPECTED_DOWNLOADS,
    KINDS,
    MANIFEST_FILE,
    SITE_DIR,
    WARC_FILE,
    Manifest,
    Sample,
    load,
)
from vlcurate.miniweb.server import DEFAULT_SLOW_SECONDS, MiniWebServer, free_port, serve

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_SLOW_SECONDS",
    "EXPECTED_DOWNLOADS",
    "KINDS",
    "MANIFEST_FILE",
    "NOAI_HEADER",
    "SITE_DIR",
    "WARC_FILE",
    "Manifest",
    "MiniWebServer",
    "Sample",
    "build",
    "free_port",
    "load",
    "serve",
]
