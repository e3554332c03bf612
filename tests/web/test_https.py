"""HTTPS on listen.https with the home's certificate (Secure cookies there),
compressed pages, and versioned static files cached for a year."""
from __future__ import annotations

import gzip
import ssl
import urllib.request

import pytest

from .conftest import WebServer

PW = "secret-pw-1"


@pytest.fixture(scope="module")
def tls_web(web):
    web.add_user("tia@example.test", PW)
    srv = WebServer(web.home, listeners=("https", "http"))
    yield srv
    srv.stop()


def test_sign_in_over_https_sets_a_secure_cookie(tls_web, browser):
    ctx = browser.new_context(ignore_https_errors=True)
    page = ctx.new_page()
    url = f"https://127.0.0.1:{tls_web.ports['https']}"
    page.goto(url + "/")
    [pre] = [c for c in ctx.cookies() if c["name"] == "cm_signin"]    # the sign-in's CSRF pair
    assert pre["secure"] and pre["httpOnly"] and pre["sameSite"] == "Strict"
    page.get_by_label("Email").fill("tia")
    page.get_by_label("Password").fill(PW)
    page.get_by_role("button", name="Sign in").click()
    assert page.url == url + "/coremail/"
    [cookie] = [c for c in ctx.cookies() if c["name"] == "cm_session"]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    ctx.close()
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    with urllib.request.urlopen(url + "/coremail/login", context=tls, timeout=10) as r:
        assert r.status == 200 and "Sign in" in r.read().decode()


def test_pages_compressed_and_static_cached(tls_web):
    base = f"http://127.0.0.1:{tls_web.ports['http']}"
    req = urllib.request.Request(base + "/coremail/login", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["Content-Encoding"] == "gzip"
        page = gzip.decompress(r.read()).decode()
    href = page.split('rel="stylesheet" href="')[1].split('"')[0]
    assert "?v=" in href
    with urllib.request.urlopen(base + href, timeout=10) as r:
        assert "max-age=31536000" in r.headers["Cache-Control"]
        assert r.headers["Content-Type"].startswith("text/css")
