"""The web service in the test process on a free loopback port, with a few
users and messages, and Debian's Chromium driven by Playwright (launched
once per session: starting a browser costs about a second)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from coremail.mail.mime import summarize
from tests.support.home import init_test_home
from tests.support.inproc import InProcService

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("COREMAIL_SCREENSHOTS", Path(__file__).resolve().parents[2]
                            / "var" / "screenshots"))


class WebServer(InProcService):
    name = "web"
    listener_names = ("http",)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mail(self, address: str, raw: bytes, folder: str = "INBOX"):
        """A message in a mailbox as SMTP would store it (with its summary)."""
        return self.put(address, raw, folder=folder, meta=summarize(raw))

    def mail_many(self, address: str, raws: list[bytes], folder: str = "INBOX"):
        """Many messages in one group commit (one fsync), in order."""
        from coremail.store.interfaces import Delivery
        user = self.store.get_user(address)
        return self.store.deliver([Delivery(user.id, self.store.blobs.write(r), folder=folder,
                                            meta=summarize(r)) for r in raws])


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    srv = WebServer(init_test_home(tmp_path_factory.mktemp("webhome")))
    yield srv
    srv.stop()


def chromium():
    """Debian's Chromium under Playwright's sync API, until the generator ends.
    While it runs, the main thread has Playwright's event loop running, so no
    pytest-asyncio test can run: use it only where no async test follows
    (tests/web comes last; tests/nodes closes its own per module)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("COREMAIL_REQUIRE_PEERS"):
            pytest.fail(f"{CHROMIUM} is missing (make test-deps installs Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def browser():
    yield from chromium()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1200, "height": 760}, locale="en-US")
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("dialog", lambda d: (pg.errors.append(f"dialog: {d.message}"), d.dismiss()))
    yield pg
    ctx.close()


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def imap(web):
    """IMAP on the webmail's home: what one client does, the other sees."""
    srv = InProcService(web.home, "imap", ("imap",))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def pop3(web):
    srv = InProcService(web.home, "pop3", ("pop3",))
    yield srv
    srv.stop()
