"""Writing in Chromium: a message with an attachment sent to another user,
who reads it over IMAP and POP3 byte for byte; reply and reply-all (quoting,
In-Reply-To, References, \\Answered); forward with the original's
attachment; a draft with Bcc saved to Drafts, resumed and sent (the Bcc
recipient gets it, nobody sees the Bcc header); a refused address or an
oversized message keeps the typed text and the attachments."""
from __future__ import annotations

import email
import imaplib
import os
import poplib
from email import policy

import pytest

from .conftest import shot

PW = "secret-pw-1"
ANN, BEN, CY = "ann@example.test", "ben@example.test", "cy@example.test"
DATA = os.urandom(20000) + b"\r\n.\r\n\x00end"


@pytest.fixture(scope="module")
def people(web):
    web.add_user(ANN, PW, name="Ann Archer")
    web.add_user(BEN, PW, name="Ben Baker")
    web.add_user(CY, PW)


def sign_in(page, web, who=ANN):
    page.goto(web.url + "/coremail/login")
    page.get_by_label("Email").fill(who)
    page.get_by_label("Password").fill(PW)
    page.get_by_role("button", name="Sign in").click()


def parsed(web, who, folder="INBOX", subject=None):
    out = []
    for m in web.messages(who, folder):
        msg = email.message_from_bytes(web.store.blobs.read(m.blob_id), policy=policy.default)
        if subject is None or msg["Subject"] == subject:
            out.append(msg)
    return out


def test_send_with_attachment_read_over_imap_and_pop3(web, people, imap, pop3, page):
    sign_in(page, web)
    page.get_by_role("link", name="Compose").click()
    page.get_by_label("To").fill("Ben Baker <ben@example.test>")
    page.get_by_label("Subject").fill("Plans 计划")
    page.get_by_label("Message").fill("Here are the plans.\nSee the file.")
    page.get_by_label("Attach files").set_input_files(
        [{"name": "plans 计划.bin", "mimeType": "application/octet-stream", "buffer": DATA}])
    shot(page, "webmail-compose-attachment")
    page.get_by_role("button", name="Send").click()
    assert page.get_by_role("status").inner_text() == "Your message was sent."
    c = imaplib.IMAP4("127.0.0.1", imap.port)
    c.login(BEN, PW)
    c.select("INBOX")
    _t, [uids] = c.uid("SEARCH", "ALL")
    _t, data = c.uid("FETCH", uids.split()[-1], "(BODY.PEEK[])")
    c.logout()
    got = email.message_from_bytes(data[0][1], policy=policy.default)
    assert got["Subject"] == "Plans 计划" and "Ben Baker" in got["To"]
    [att] = list(got.iter_attachments())
    assert att.get_filename() == "plans 计划.bin" and att.get_content() == DATA
    assert "Here are the plans." in got.get_body(("plain",)).get_content()
    p = poplib.POP3("127.0.0.1", pop3.port)
    p.user(BEN)
    p.pass_(PW)
    _r, lines, _o = p.retr(len(p.list()[1]))
    p.quit()
    popped = email.message_from_bytes(b"\r\n".join(lines), policy=policy.default)
    assert list(popped.iter_attachments())[0].get_content() == DATA
    assert parsed(web, ANN, "Sent", "Plans 计划")
    assert page.errors == []


def test_reply_and_reply_all_quote_and_thread(web, people, page):
    web.mail(BEN, b"From: Cy <cy@example.test>\r\nTo: ben@example.test, ann@example.test\r\n"
                  b"Cc: Dee <dee@example.test>\r\nSubject: Offsite agenda\r\n"
                  b"Message-ID: <agenda-1@example.test>\r\nReferences: <root@example.test>\r\n"
                  b"\r\nFirst line.\r\nSecond line.\r\n")
    sign_in(page, web, BEN)
    page.get_by_role("link", name="Offsite agenda").click()
    page.get_by_role("link", name="Reply all").click()
    assert page.get_by_label("To").input_value() == "Cy <cy@example.test>"
    assert page.get_by_label("Cc", exact=True).input_value() == "ann@example.test, Dee <dee@example.test>"
    assert page.get_by_label("Subject").input_value() == "Re: Offsite agenda"
    body = page.get_by_label("Message").input_value()
    assert "wrote:\n> First line.\n> Second line." in body
    page.get_by_label("Cc", exact=True).fill("ann@example.test")
    page.get_by_label("Message").fill("Sounds good.\n" + body)
    page.get_by_role("button", name="Send").click()
    assert page.get_by_role("status").inner_text() == "Your message was sent."
    [r] = parsed(web, CY, subject="Re: Offsite agenda")
    assert r["In-Reply-To"] == "<agenda-1@example.test>"
    assert r["References"] == "<root@example.test> <agenda-1@example.test>"
    assert "> First line." in r.get_content() and parsed(web, ANN, subject="Re: Offsite agenda")
    [orig] = [m for m in web.messages(BEN) if m.size and "\\Answered" in m.flags]
    assert orig
    page.get_by_role("link", name="Offsite agenda").click()
    page.get_by_role("link", name="Reply", exact=True).click()
    assert page.get_by_label("To").input_value() == "Cy <cy@example.test>"
    assert page.get_by_label("Cc", exact=True).input_value() == ""
    assert page.errors == []


def test_forward_carries_the_attachment(web, people, page):
    sign_in(page, web, BEN)
    page.get_by_role("link", name="Plans 计划").click()
    page.get_by_role("link", name="Forward").click()
    assert page.get_by_label("Subject").input_value() == "Fwd: Plans 计划"
    assert "Forwarded message" in page.get_by_label("Message").input_value()
    assert "Here are the plans." in page.get_by_label("Message").input_value()
    assert page.get_by_label("plans 计划.bin").is_checked()
    page.get_by_label("To").fill("cy")          # a bare local part is not an address
    page.get_by_role("button", name="Send").click()
    assert page.locator("#to-error").is_visible()
    assert page.get_by_label("plans 计划.bin").is_checked()      # kept, as a draft
    page.get_by_label("To").fill(CY)
    page.get_by_role("button", name="Send").click()
    assert page.get_by_role("status").inner_text() == "Your message was sent."
    [f] = parsed(web, CY, subject="Fwd: Plans 计划")
    assert list(f.iter_attachments())[0].get_content() == DATA
    assert web.messages(BEN, "Drafts") == []          # the kept draft went with the send
    assert page.errors == []


def test_draft_with_bcc_saved_resumed_and_sent(web, people, page):
    sign_in(page, web)
    page.goto(web.url + "/coremail/compose")
    page.get_by_label("To").fill(BEN)
    page.get_by_label("Bcc").fill(CY)
    page.get_by_label("Subject").fill("Surprise party")
    page.get_by_label("Message").fill("Don't tell anyone.")
    page.get_by_label("Attach files").set_input_files(
        [{"name": "map.bin", "mimeType": "application/octet-stream", "buffer": b"\x01map\x02"}])
    page.get_by_role("button", name="Save draft").click()
    assert page.get_by_role("status").inner_text() == "Draft saved."
    [d] = parsed(web, ANN, "Drafts")
    assert d["Bcc"] == CY and "\\Draft" in web.messages(ANN, "Drafts")[0].flags
    page.goto(web.url + "/coremail/folder/Drafts")
    page.get_by_role("link", name="Surprise party").click()
    assert page.get_by_label("Bcc").input_value() == CY
    assert page.get_by_label("Message").input_value().startswith("Don't tell anyone.")
    assert page.get_by_label("map.bin").is_checked()
    page.get_by_role("button", name="Send").click()
    assert page.get_by_role("status").inner_text() == "Your message was sent."
    [got] = parsed(web, CY, subject="Surprise party")
    assert got["Bcc"] is None and list(got.iter_attachments())[0].get_content() == b"\x01map\x02"
    [seen] = parsed(web, BEN, subject="Surprise party")
    assert seen["Bcc"] is None and CY not in seen.as_string()
    assert web.messages(ANN, "Drafts") == []
    assert page.errors == []


def test_too_big_keeps_the_text(web, people, page):
    web.settings(limits={"max_message_size": 10000})
    try:
        sign_in(page, web)
        page.goto(web.url + "/coremail/compose")
        page.get_by_label("To").fill(BEN)
        page.get_by_label("Message").fill("a long story")
        page.get_by_label("Attach files").set_input_files(
            [{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": DATA}])
        page.get_by_role("button", name="Send").click()
        assert "more than this server accepts" in page.get_by_role("alert").inner_text()
        assert page.get_by_label("Message").input_value() == "a long story"
        assert page.get_by_label("To").input_value() == BEN
    finally:
        web.settings(limits={"max_message_size": 50 << 20})
