"""``build``: write a whole mini web (site, crawl, manifest) into a folder, deterministically."""

import shutil
from pathlib import Path

from vlcurate.miniweb import pages as pages_mod
from vlcurate.miniweb.catalog import make_catalog
from vlcurate.miniweb.manifest import MANIFEST_FILE, SITE_DIR, WARC_FILE, Manifest
from vlcurate.miniweb.warc import write_warc

DEFAULT_PORT = 8765


def build(out_dir, seed: int = 0, port: int = DEFAULT_PORT, n_shapes: int = 200) -> Manifest:
    """Build the mini web of ``seed`` for a server on ``http://127.0.0.1:{port}``.

    Writes ``site/`` (pages, images and everything the server serves), ``crawl.warc.gz``
    (the pages as WARC response records), ``manifest.jsonl`` (one sample per image reference)
    and ``miniweb.json`` (parameters and counts). The same seed and port give byte-identical
    files. A previous build's ``site/`` in ``out_dir`` is replaced.
    """
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535, not {port}: URLs in the crawl carry it")
    out = Path(out_dir)
    base = f"http://127.0.0.1:{port}"
    catalog = make_catalog(seed, base, n_shapes)
    pages = pages_mod.layout(catalog)
    catalog.put("index.html", pages_mod.index_html(pages))

    out.mkdir(parents=True, exist_ok=True)
    site = out / SITE_DIR
    if site.exists():
        shutil.rmtree(site)
    for rel, data in sorted(catalog.files.items()):
        target = site / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    write_warc(out / WARC_FILE, pages, seed, port)
    manifest = Manifest(
        catalog.samples, seed=seed, port=port, n_shapes=n_shapes, pages=[p.url for p in pages]
    )
    manifest.to_jsonl(out / MANIFEST_FILE)
    return manifest
