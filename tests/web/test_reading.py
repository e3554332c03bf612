"""Reading mail in Chromium: unread counts and bold rows, a long folder
paged newest first, subjects and bodies in GB2312/GBK/GB18030, Big5,
ISO-8859-x, Shift_JIS and UTF-8, an HTML message with a cid: image shown
inline, attachments with RFC 2231 and RFC 2047 names downloaded byte for
byte (attachment, nosniff), and \\Seen set by opening a message seen over
IMAP at once."""
from __future__ import annotations

import base64
import imaplib
import os
from email.message import EmailMessage

import pytest

from .conftest import shot

PW = "secret-pw-1"
ME = "rita@example.test"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAHklEQVR4nGP4z8Dwn4GBgYGJgYGBgQEqQJ0ABgBKWQL+"
    "tYFm3wAAAABJRU5ErkJggg==")


def word(text: str, charset: str) -> str:
    return "=?%s?B?%s?=" % (charset, base64.b64encode(text.encode(charset)).decode())


def plain(subject_word: str, body: bytes, charset: str, sender: str = "x@example.test") -> bytes:
    return (f"From: {sender}\r\nTo: {ME}\r\nSubject: {subject_word}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n"
            "\r\n").encode() + body + b"\r\n"


CHARSET_CASES = [
    ("gb2312", "季度报告", "请查收附件中的报告。"),
    ("gbk", "镕基金通知", "镕字在 GBK 里才有。"),
    ("gb18030", "生僻字𠀀测试", "四字节的字：𠀀"),
    ("big5", "會議記錄", "請參閱會議記錄。"),
    ("iso-8859-2", "Zażółć gęślą jaźń", "Łódź i Kraków"),
    ("iso-8859-1", "Café crème", "Ça va très bien."),
    ("shift_jis", "会議のお知らせ", "明日の会議は十時からです。"),
    ("utf-8", "Emoji 😀 and ✓", "Grüße, 你好, Привет"),
]


BLOB = os.urandom(3000) + b"\x00\r\n\r\n.\r\n"


def rich_message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Reports <reports@example.test>"
    msg["To"] = ME
    msg["Subject"] = "Quarterly report with pictures"
    msg.set_content("The report, with a chart.")
    msg.add_alternative('<p>Here is the chart:</p><img src="cid:chart@example.test" alt="chart">'
                        '<p>Regards</p>', subtype="html")
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<chart@example.test>")
    msg.add_attachment(BLOB, maintype="application",
                       subtype="octet-stream", filename="报告 2026.bin")   # RFC 2231
    return msg.as_bytes()


BIN = b"\x00\x01\xff\r\n\x1a binary \r\n\r\n" * 50


def gbk_named_attachment() -> bytes:
    """An attachment whose name is an RFC 2047 word (what many mailers send)."""
    name = word("合同.bin", "gb2312")
    return (f"From: a@example.test\r\nTo: {ME}\r\nSubject: contract\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
            "Content-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\n"
            f"Content-Type: application/octet-stream; name=\"{name}\"\r\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode() \
        + base64.encodebytes(BIN).replace(b"\n", b"\r\n") + b"--b1--\r\n"


@pytest.fixture(scope="module")
def rita(web):
    user = web.add_user(ME, PW, name="Rita")
    for cs, subject, body in CHARSET_CASES:
        web.mail(ME, plain(word(subject, cs), body.encode(cs), cs,
                           sender=f"{word('发件人', 'gbk')} <cn@example.test>"))
    web.mail(ME, gbk_named_attachment())
    web.mail(ME, rich_message())
    box = web.store.get_folder(user.id, "INBOX")
    web.store.create_folder(user.id, "Archive")
    web.mail_many(ME, [f"From: list@example.test\r\nSubject: Archived {i:03d}\r\n\r\nbody {i}\r\n"
                       .encode() for i in range(120)], folder="Archive")
    return user, box


def sign_in(page, web):
    page.goto(web.url + "/coremail/")
    page.get_by_label("Email").fill(ME)
    page.get_by_label("Password").fill(PW)
    page.get_by_role("button", name="Sign in").click()


def test_subjects_and_bodies_in_every_charset(web, rita, page):
    sign_in(page, web)
    rows = page.locator("table.messages tbody tr")
    assert rows.count() == len(CHARSET_CASES) + 2
    text = page.locator("table.messages").inner_text()
    for cs, subject, _body in CHARSET_CASES:
        assert subject in text, cs
    assert "发件人" in text
    assert page.locator("tr.unread").count() == rows.count()        # all unread, bold
    assert page.locator("tr.unread td.from").first.evaluate(
        "e => getComputedStyle(e).fontWeight") >= "600"
    assert page.locator("aside li.on .count").inner_text() == str(rows.count())
    assert page.locator("tbody tr .clip").count() == 2              # the two with attachments
    shot(page, "webmail-inbox-charsets")
    for cs, subject, body in CHARSET_CASES:
        page.get_by_role("link", name=subject, exact=True).click()
        assert page.locator("h1").inner_text().strip() == subject, cs
        assert body in page.locator("article").inner_text(), cs
        page.go_back()
    assert page.errors == []


def test_a_long_folder_is_paged_newest_first(web, rita, page):
    sign_in(page, web)
    page.get_by_role("link", name="Archive").click()
    rows = page.locator("table.messages tbody tr")
    assert rows.count() == 50
    assert "Archived 119" in rows.first.inner_text() and "Archived 070" in rows.last.inner_text()
    assert "Page 1 of 3" in page.locator(".pager").inner_text()
    page.get_by_role("link", name="Older →").click()
    assert "Archived 069" in rows.first.inner_text()
    page.get_by_role("link", name="Older →").click()
    assert rows.count() == 20 and "Archived 000" in rows.last.inner_text()
    assert page.get_by_role("link", name="Older →").count() == 0
    page.get_by_role("link", name="← Newer").click()
    assert "Page 2 of 3" in page.locator(".pager").inner_text()


def test_inline_image_and_attachments_byte_for_byte(web, rita, page):
    sign_in(page, web)
    page.get_by_role("link", name="Quarterly report with pictures").click()
    img = page.locator("article img")
    img.wait_for()
    page.wait_for_function("() => document.querySelector('article img').complete")
    assert img.evaluate("e => e.naturalWidth") == 16                # the cid: part, shown
    links = page.locator(".attachments a")
    assert links.count() == 1 and links.first.inner_text() == "报告 2026.bin"   # the image is not listed
    shot(page, "webmail-message-attachment")
    with page.expect_download() as dl:
        links.first.click()
    d = dl.value
    assert d.suggested_filename == "报告 2026.bin"
    assert open(d.path(), "rb").read() == BLOB
    resp = page.request.get(web.url + links.first.get_attribute("href"))
    assert resp.headers["content-disposition"].startswith("attachment;")
    assert resp.headers["x-content-type-options"] == "nosniff"
    page.goto(web.url + "/coremail/")
    page.get_by_role("link", name="contract").click()
    link = page.locator(".attachments a")
    assert link.inner_text() == "合同.bin"
    with page.expect_download() as dl:
        link.click()
    assert dl.value.suggested_filename == "合同.bin"
    assert open(dl.value.path(), "rb").read() == BIN
    assert page.errors == []


def test_opening_sets_seen_for_imap_at_once(web, rita, imap, page):
    web.mail(ME, b"From: bob@example.test\r\nSubject: Seen test\r\n\r\nhello\r\n")
    c = imaplib.IMAP4("127.0.0.1", imap.port)
    c.login(ME, PW)
    c.select("INBOX")
    _t, [unseen_before] = c.uid("SEARCH", "UNSEEN", "SUBJECT", "\"Seen test\"")
    assert unseen_before
    sign_in(page, web)
    page.get_by_role("link", name="Seen test").click()
    c.noop()
    _t, [unseen_after] = c.uid("SEARCH", "UNSEEN", "SUBJECT", "\"Seen test\"")
    _t, [seen] = c.uid("SEARCH", "SEEN", "SUBJECT", "\"Seen test\"")
    assert unseen_after == b"" and seen == unseen_before
    c.uid("STORE", seen, "-FLAGS", "(\\Seen)")    # and back: the web list shows it unread again
    c.logout()
    page.goto(web.url + "/coremail/")
    assert "unread" in page.locator("tr", has_text="Seen test").get_attribute("class")
