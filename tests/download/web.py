"""A tiny web on 127.0.0.1 for the download tests: six coloured JPEGs, a web page posing as an
image, a PNG decompression bomb, and candidates tables pointing at them."""

import functools
import struct
import threading
import time
import zlib
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

from tests.pairs import pairs_table

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]


def png_bomb(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose header declares width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = zlib.compress(b"\0" * (1 + 3 * width) * 4)  # the first rows only
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


class QuietHandler(SimpleHTTPRequestHandler):
    delay = 0.0  # seconds before each answer

    def do_GET(self):
        time.sleep(self.delay)
        super().do_GET()

    def log_message(self, *args):
        pass


def build(root, extra_images: int = 0) -> None:
    """The coloured JPEGs, the page, the bomb, and ``extra_images`` JPEGs ``NNN.jpg``."""
    for i, colour in enumerate(COLOURS):
        Image.new("RGB", (120 + i, 90), colour).save(root / f"{colour}.jpg", quality=90)
    for i in range(extra_images):
        Image.new("RGB", (40 + i % 7, 30), (i * 5 % 256, 90, 160)).save(root / f"{i:03d}.jpg")
    (root / "not-an-image.jpg").write_text("<html>this is a web page</html>")
    (root / "bomb.png").write_bytes(png_bomb(40_000, 40_000))


@contextmanager
def serve(root, delay: float = 0.0):
    """Serve ``root`` on 127.0.0.1 and a free port; yields the base URL."""
    handler = functools.partial(
        type("Handler", (QuietHandler,), {"delay": delay}), directory=str(root)
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def candidates(base, colours):
    """The six colours, a 404, the page, the bomb, and two unsafe URLs: 11 candidates."""
    urls = [f"{base}/{c}.jpg" for c in colours] + [
        f"{base}/missing.jpg",
        f"{base}/not-an-image.jpg",
        f"{base}/bomb.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/x.jpg",
    ]
    captions = [f"a {c} rectangle" for c in colours] + ["gone", "html", "bomb", "metadata", "local"]
    return pairs_table(*captions, urls=urls)
