"""The browser fixtures of the web tests, for the webadmin's view of every node."""
from tests.web.conftest import browser, page  # noqa: F401
