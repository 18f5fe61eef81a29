import pytest

from tests.download import web


@pytest.fixture(scope="module")
def image_server(tmp_path_factory):
    """``(base URL, colours)`` of the tiny web, served for the module's tests."""
    root = tmp_path_factory.mktemp("www")
    web.build(root)
    with web.serve(root) as base:
        yield base, web.COLOURS
