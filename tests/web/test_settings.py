"""Settings in Chromium: the display name (in the header and on sent mail),
the password (the old one required; the new one works over IMAP), the
auto-forward that `userutil forward` sets and shows (with and without a
local copy, and the inbox saying so), and the signature in new messages."""
from __future__ import annotations

import imaplib

import pytest

from coremail.services.accounts import Accounts

from .conftest import shot

PW = "secret-pw-1"
ME = "sam@example.test"


@pytest.fixture(scope="module")
def sam(web):
    web.add_user("pat@example.test", PW)
    return web.add_user(ME, PW)


def sign_in(page, web, password=PW):
    page.goto(web.url + "/coremail/login")
    page.get_by_label("Email").fill(ME)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_name_signature_and_forward(web, sam, page):
    sign_in(page, web)
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Display name").fill("Sam  Smith ")
    page.get_by_role("button", name="Save name").click()
    assert page.get_by_role("status").inner_text() == "Your name was saved."
    assert page.locator("header .me").inner_text() == "Sam Smith"
    assert web.store.get_user(ME).name == "Sam Smith"
    page.get_by_label("Added below new messages").fill("Sam Smith\nSales, ext. 42")
    page.get_by_role("button", name="Save signature").click()
    page.get_by_label("Forward my mail to").fill("pat@example.test")
    page.get_by_label("Forward without keeping a copy").check()
    page.get_by_role("button", name="Save forwarding").click()
    assert page.get_by_role("status").inner_text() == "Forwarding was saved."
    assert "does not stay in this mailbox" in page.locator(".forward-state").inner_text()
    fwd = web.store.get_forward(sam.id)
    assert (fwd.target, fwd.keep) == ("pat@example.test", False)    # what userutil forward shows
    shot(page, "webmail-settings")
    page.goto(web.url + "/coremail/")
    assert "forwarded to pat@example.test and not kept here" in page.locator(".warn").inner_text()
    # userutil's side of the same setting
    Accounts(web.store, "example.test").set_forward(ME, "pat@example.test", True)
    page.goto(web.url + "/coremail/settings")
    assert "a copy stays in this mailbox" in page.locator(".forward-state").inner_text()
    assert page.get_by_label("Forward and keep a copy here").is_checked()
    page.get_by_label("Forward my mail to").fill("nobody@example.test")
    page.get_by_role("button", name="Save forwarding").click()
    assert "does not exist" in page.locator("#target-error").inner_text()
    page.get_by_label("Do not forward").check()
    page.get_by_role("button", name="Save forwarding").click()
    assert web.store.get_forward(sam.id) is None
    page.goto(web.url + "/coremail/compose")
    assert page.get_by_label("Message").input_value() == "\n\n-- \nSam Smith\nSales, ext. 42"
    page.get_by_label("To").fill("pat@example.test")
    page.get_by_label("Subject").fill("signed")
    page.get_by_role("button", name="Send").click()
    raw = web.store.blobs.read(web.messages("pat@example.test")[-1].blob_id)
    assert b"From: Sam Smith <sam@example.test>" in raw and b"Sales, ext. 42" in raw
    assert page.errors == []


def test_password_change_needs_the_old_one(web, sam, imap, page):
    sign_in(page, web)
    page.goto(web.url + "/coremail/settings")
    page.get_by_label("Current password").fill("not-it")
    page.get_by_label("New password", exact=True).fill("brand-new-pw-2")
    page.get_by_label("New password again").fill("brand-new-pw-2")
    page.get_by_role("button", name="Change password").click()
    assert page.locator("#pw-old-error").inner_text() == "That is not your current password."
    page.get_by_label("Current password").fill(PW)
    page.get_by_label("New password", exact=True).fill("brand-new-pw-2")
    page.get_by_label("New password again").fill("brand-new-pw-3")
    page.get_by_role("button", name="Change password").click()
    assert page.locator("#pw-again-error").is_visible()
    page.get_by_label("Current password").fill(PW)
    page.get_by_label("New password", exact=True).fill("brand-new-pw-2")
    page.get_by_label("New password again").fill("brand-new-pw-2")
    page.get_by_role("button", name="Change password").click()
    assert page.get_by_role("status").inner_text() == "Your password was changed."
    c = imaplib.IMAP4("127.0.0.1", imap.port)
    c.login(ME, "brand-new-pw-2")
    c.logout()
    assert page.errors == []
