"""The webmail in Chromium: sign in (full address, bare local part, wrong
password), the inbox, a message (marked \\Seen for IMAP at once), sending to
another user through the same path as port 587, a hostile message that runs
nothing, and a POST without its CSRF token refused (the sign-in's too: a
forged cross-site sign-in sets no session). Screenshots of the pages
go to var/screenshots/ for a person to look at."""
from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.support.home import ADMIN_PASSWORD

from .conftest import shot

PW = "secret-pw-1"
HELLO = (b"From: Bob Builder <bob@example.test>\r\nTo: amy@example.test\r\n"
         b"Subject: Lunch on Friday?\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n"
         b"Message-ID: <lunch@example.test>\r\n\r\nShall we try the new place at noon?\r\n")
GBK = ("From: =?GBK?B?" + __import__("base64").b64encode("张伟".encode("gbk")).decode()
       + "?= <zhang@example.test>\r\nTo: amy@example.test\r\nSubject: =?GBK?B?"
       + __import__("base64").b64encode("会议通知".encode("gbk")).decode()
       + "?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=gbk\r\n"
       "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + "明天上午十点开会。\r\n".encode("gbk")
XSS = (b"From: mallory@evil.test\r\nTo: amy@example.test\r\nSubject: Click me\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
       b"<script>alert('s')</script><img src=x onerror=alert('i')>"
       b"<a href=\"javascript:alert('j')\">link</a><svg onload=alert('v')></svg>"
       b"<iframe src=\"javascript:alert('f')\"></iframe><base href=\"http://evil.test/\">"
       b"<meta http-equiv=refresh content=\"0;url=http://evil.test/\">"
       b"<div style=\"background:url(javascript:alert('c'))\">styled</div>"
       b"<p onmouseover=alert('m')>Hello <b>there</b></p><img src=\"http://tracker.test/p.gif\">"
       b"<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">data link</a>"
       b"<a href=\"  JaVaScRiPt:alert('x')\">spaced</a><a href=\"jav&#x09;ascript:alert(1)\">tab</a>"
       b"<img src=\"data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+\">"
       b"<svg><script>alert('svg')</script><a xlink:href=\"javascript:alert(2)\">s</a></svg>"
       b"<math><mtext><table><mglyph><style><img src=x onerror=alert('m2')></style></mglyph></table></mtext></math>"
       b"<div style=\"width: expression(alert('e'))\">expr</div><style>body{background:red}</style>"
       b"<object data=\"javascript:alert('o')\"></object><embed src=\"javascript:alert('e2')\">"
       b"<form action=\"http://evil.test/\"><input name=pw><button>go</button></form>"
       b"<<script>alert('n')//<</script><img/src=x/onerror=alert('slash')>"
       b"<a href=\"http://ok.test/\" target=_top onclick=alert('c2')>ok link</a>"
       b"<noscript><p title=\"</noscript><img src=x onerror=alert('ns')>\"></noscript>")


@pytest.fixture(scope="module")
def users(web):
    amy = web.add_user("amy@example.test", PW, name="Amy Adams")
    web.add_user("bob@example.test", PW)
    web.mail("amy@example.test", GBK)
    web.mail("amy@example.test", HELLO)
    return amy


def sign_in(page, web, login="amy@example.test", password=PW):
    page.goto(web.url + "/")
    page.get_by_label("Email").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_read_and_seen_for_imap(web, users, page):
    sign_in(page, web, login="amy@example.test", password="wrong")
    assert page.get_by_role("alert").inner_text() == "Wrong email address or password."
    assert not [c for c in page.context.cookies() if c["name"] == "cm_session"]
    sign_in(page, web)
    assert page.url.endswith("/coremail/")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "cm_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    rows = page.locator("table.messages tbody tr")
    assert rows.count() == 2 and "Lunch on Friday?" in rows.nth(0).inner_text()  # newest first
    assert "会议通知" in rows.nth(1).inner_text() and "张伟" in rows.nth(1).inner_text()
    assert page.locator("aside .count").first.inner_text() == "2"
    shot(page, "webmail-inbox")
    page.get_by_role("link", name="Lunch on Friday?").click()
    assert page.locator("h1").inner_text() == "Lunch on Friday?"
    assert "Shall we try the new place at noon?" in page.locator("article").inner_text()
    shot(page, "webmail-message")
    [m] = [x for x in web.messages("amy@example.test") if x.size == len(HELLO)]
    assert "\\Seen" in m.flags            # the store, as IMAP sees it
    page.goto(web.url + "/coremail/")
    page.get_by_role("link", name="会议通知").click()
    assert "明天上午十点开会。" in page.locator("article").inner_text()
    assert page.errors == []


def test_bare_local_part_and_send_to_another_user(web, users, page):
    sign_in(page, web, login="amy")
    assert page.url.endswith("/coremail/")
    page.get_by_role("link", name="Compose").click()
    page.get_by_label("To").fill("bob@example.test, amy＠example.test ")   # the seed's full-width @
    page.get_by_label("Subject").fill("Re: lunch")
    page.get_by_label("Message").fill("Noon works. See you there!")
    shot(page, "webmail-compose")
    page.get_by_role("button", name="Send").click()
    notice = page.locator(".notice, p.error, .field-error")
    assert "Your message was sent." in notice.first.inner_text(timeout=5000), page.content()[-1500:]
    got = web.messages("bob@example.test")
    assert len(got) == 1
    raw = web.store.blobs.read(got[0].blob_id)
    assert b"Subject: Re: lunch" in raw and b"Noon works." in raw and b"with HTTP" in raw
    assert len(web.messages("amy@example.test", "Sent")) == 1
    assert any(b"Noon works." in web.store.blobs.read(m.blob_id)
               for m in web.messages("amy@example.test"))      # normalised, delivered
    assert page.errors == []


def test_a_bad_address_is_shown_next_to_its_field_and_the_text_kept(web, users, page):
    sign_in(page, web)
    page.goto(web.url + "/coremail/compose")
    page.get_by_label("To").fill("nobody@example.test, bad address@example.test")
    page.get_by_label("Message").fill("text that must not be lost")
    page.get_by_role("button", name="Send").click()
    err = page.locator("#to-error").inner_text()
    assert "bad address@example.test" in err
    assert page.get_by_label("Message").input_value() == "text that must not be lost"
    page.get_by_label("To").fill("nobody@example.test")
    page.get_by_role("button", name="Send").click()
    assert "no mailbox here by the name <nobody@example.test>" in page.locator("#to-error").inner_text()
    assert page.get_by_label("Message").input_value() == "text that must not be lost"


def test_hostile_html_runs_nothing(web, users, page):
    web.mail("amy@example.test", XSS)
    sign_in(page, web)
    page.get_by_role("link", name="Click me").click()
    body = page.locator("article")
    assert "Hello there" in body.inner_text()
    html = body.inner_html()
    for bad in ("<script", "onerror", "javascript:", "<iframe", "<base", "<meta", "onload",
                "style=", "tracker.test", "data:", "expression", "<object", "<embed", "<form",
                "<input", "<style", "onclick", "<svg", "xlink"):
        assert bad not in html, bad
    assert "remote image was not loaded" in page.locator(".notice").inner_text()
    page.wait_for_timeout(300)
    assert page.errors == []              # no dialog, no script error
    assert page.url.startswith(web.url)   # no refresh to elsewhere
    assert page.evaluate("() => document.scripts.length") == 0
    assert page.locator("article a[href='http://ok.test/']").get_attribute("rel") == "noopener noreferrer"
    csp = page.request.get(page.url).headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp


def test_a_post_without_the_csrf_token_is_refused(web, users, page):
    sign_in(page, web)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "cm_session"]
    before = len(web.messages("bob@example.test"))
    data = urllib.parse.urlencode({"to": "bob@example.test", "subject": "forged",
                                   "body": "x"}).encode()
    req = urllib.request.Request(web.url + "/coremail/compose", data=data,
                                 headers={"Cookie": f"cm_session={cookie['value']}"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403
    assert len(web.messages("bob@example.test")) == before


def _post_sign_in(url: str, fields: dict, cookie: str = "") -> urllib.error.HTTPError:
    req = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(),
                                 headers={"Cookie": cookie} if cookie else {})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    return e.value


def test_a_sign_in_post_without_its_token_is_refused_on_both_consoles(web, users):
    for root, who, pw in (("/coremail/", "amy@example.test", PW),
                          ("/webadmin/", "admin", ADMIN_PASSWORD)):
        url = web.url + root + "login"
        no_token = _post_sign_in(url, {"login": who, "password": pw})
        with urllib.request.urlopen(url, timeout=10) as r:      # a real visit: cookie and form
            [pre] = [c.split(";")[0] for c in r.headers.get_all("Set-Cookie")
                     if c.startswith("cm_signin=")]
        # the cookie of a real visit with a token that is not its own (or none)
        wrong = _post_sign_in(url, {"login": who, "password": pw, "csrf": "x" * 32}, pre)
        bare = _post_sign_in(url, {"login": who, "password": pw}, pre)
        for e in (no_token, wrong, bare):
            page = e.read().decode()
            assert e.code == 403, root
            assert "This sign-in form has expired or did not come from this site" in page
            assert 'name="password"' in page and "Traceback" not in page   # the form again
            assert not [c for c in e.headers.get_all("Set-Cookie") or []
                        if c.startswith("cm_session=")]


def test_a_forged_cross_site_sign_in_sets_no_session(web, users, page):
    page.goto(web.url + "/coremail/login")
    [pre] = [c for c in page.context.cookies() if c["name"] == "cm_signin"]
    assert pre["httpOnly"] and pre["sameSite"] == "Strict" and not pre["secure"]
    # another site's page posts the attacker's credentials to our sign-in
    page.goto("about:blank")
    page.set_content(f'<form method="post" action="{web.url}/coremail/login">'
                     '<input name="login" value="bob@example.test">'
                     f'<input name="password" value="{PW}"><input name="csrf" value="guess"></form>')
    page.evaluate("document.forms[0].submit()")
    page.wait_for_load_state()
    assert "did not come from this site" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Email").input_value() == ""       # not the forger's address
    assert not [c for c in page.context.cookies() if c["name"] == "cm_session"]
    shot(page, "webmail-login-forged")
    page.get_by_label("Email").fill("amy")        # the form shown with the refusal works
    page.get_by_label("Password").fill(PW)
    page.get_by_role("button", name="Sign in").click()
    assert page.url.endswith("/coremail/")
    names = {c["name"] for c in page.context.cookies()}
    assert "cm_session" in names and "cm_signin" not in names


def test_the_administration_signs_in_with_the_same_form(web, users, page):
    page.goto(web.url + "/webadmin/")
    assert page.locator("h1").inner_text() == "Sign in to the administration"
    assert page.locator(".brand .tag").inner_text() == "admin"
    shot(page, "webadmin-login")
    page.get_by_label("Email").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert page.url == web.url + "/webadmin/"
    assert page.locator("nav.side").count() == 1
