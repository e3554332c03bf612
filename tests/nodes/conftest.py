"""The browser fixtures of the web tests, for the webadmin's view of every node.
The browser is this module's own: the web tests' one lasts the session, and
Playwright's running event loop would break every async test after this
directory."""
import pytest

from tests.web.conftest import chromium, page  # noqa: F401


@pytest.fixture(scope="module")
def browser():
    yield from chromium()
