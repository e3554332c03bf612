"""Organising mail in Chromium: several messages selected at once, marked
read/unread and flagged, moved into a new folder, deleted to Trash, deleted
for good, Trash emptied; folders created, renamed and deleted; a search by
sender, subject and body (IMAP SEARCH's semantics, through the store)."""
from __future__ import annotations

import pytest

from .conftest import shot

PW = "secret-pw-1"
ME = "otto@example.test"


@pytest.fixture(scope="module")
def otto(web):
    user = web.add_user(ME, PW, name="Otto")
    web.mail_many(ME, [
        b"From: Alice <alice@example.test>\r\nSubject: Budget 2027\r\n\r\nThe numbers are in.\r\n",
        b"From: Bob <bob@example.test>\r\nSubject: Team lunch\r\n\r\nPizza on Friday.\r\n",
        b"From: Carol <carol@example.test>\r\nSubject: Re: Budget 2027\r\n\r\nLooks fine.\r\n",
        b"From: Dave <dave@example.test>\r\nSubject: Holiday photos\r\n\r\nSee the pizza oven!\r\n",
    ])
    return user


def sign_in(page, web):
    page.goto(web.url + "/coremail/")
    page.get_by_label("Email").fill(ME)
    page.get_by_label("Password").fill(PW)
    page.get_by_role("button", name="Sign in").click()


def select(page, *subjects):
    for s in subjects:
        page.get_by_label(f"Select “{s}”").check()


def flags(web, subject, folder="INBOX"):
    for m in web.store.list_messages(web.folder(ME, folder).id, with_meta=True):
        if m.meta["subject"] == subject:
            return m.flags
    return None


def test_mark_flag_move_delete_and_empty_trash(web, otto, page):
    sign_in(page, web)
    page.get_by_role("button", name="Mark read").first.click()
    assert page.get_by_role("status").inner_text() == "Select at least one message first."
    select(page, "Budget 2027", "Team lunch")
    page.get_by_role("button", name="Mark read").first.click()
    assert page.get_by_role("status").inner_text() == "Marked as read."
    assert "\\Seen" in flags(web, "Budget 2027") and "\\Seen" in flags(web, "Team lunch")
    assert page.locator("tr.unread").count() == 2
    select(page, "Team lunch")
    page.get_by_role("button", name="Mark unread").first.click()
    assert "\\Seen" not in flags(web, "Team lunch")
    select(page, "Holiday photos")
    page.get_by_role("button", name="Flag", exact=True).first.click()
    assert "\\Flagged" in flags(web, "Holiday photos")
    assert page.locator("tr", has_text="Holiday photos").locator(".star").count() == 1

    page.get_by_role("link", name="Manage folders").click()
    page.get_by_label("New folder").fill("Projects")
    page.get_by_role("button", name="Create").click()
    assert page.get_by_role("status").inner_text() == "Folder created."
    page.get_by_label("New folder").fill("Projects")
    page.get_by_role("button", name="Create").click()
    assert page.get_by_role("alert").inner_text() == "A folder with that name exists already."

    page.goto(web.url + "/coremail/")
    select(page, "Budget 2027", "Re: Budget 2027")
    page.locator("#dest-list").select_option("Projects")
    page.get_by_role("button", name="Move", exact=True).click()
    assert page.get_by_role("status").inner_text() == "Moved to Projects."
    assert page.locator("tbody tr").count() == 2
    assert len(web.messages(ME, "Projects")) == 2
    shot(page, "webmail-organised")

    select(page, "Team lunch")
    page.get_by_role("button", name="Delete").first.click()
    assert page.get_by_role("status").inner_text() == "Moved to Trash."
    assert [m.meta["subject"] for m in web.store.list_messages(
        web.folder(ME, "Trash").id, with_meta=True)] == ["Team lunch"]
    # from a message's own page
    page.get_by_role("link", name="Holiday photos").click()
    page.get_by_role("button", name="Delete").click()
    assert page.url.endswith("/coremail/folder/INBOX?done=deleted")
    assert page.locator("p.empty").is_visible()
    page.locator("aside").get_by_role("link", name="Trash").click()
    select(page, "Team lunch")
    page.get_by_role("button", name="Delete").first.click()
    assert page.get_by_role("status").inner_text() == "Deleted for good."
    assert len(web.messages(ME, "Trash")) == 1
    page.get_by_role("button", name="Empty Trash now").click()
    assert page.get_by_role("status").inner_text() == "The folder is empty now."
    assert web.messages(ME, "Trash") == []
    assert page.errors == []


def test_rename_and_delete_folders(web, otto, page):
    sign_in(page, web)
    page.goto(web.url + "/coremail/folders")
    page.get_by_label("New folder").fill("Clients/2026")
    page.get_by_role("button", name="Create").click()
    page.get_by_label("New name for Clients/2026").fill("Clients/Current")
    page.locator("form", has=page.get_by_label("New name for Clients/2026")).get_by_role(
        "button", name="Rename").click()
    assert page.get_by_role("status").inner_text() == "Folder renamed."
    names = [f.name for f in web.store.list_folders(otto.id)]
    assert "Clients/Current" in names and "Clients/2026" not in names
    assert page.locator("aside li.depth-1", has_text="Current").count() == 1
    shot(page, "webmail-folders")
    page.get_by_role("button", name="Delete folder Clients/Current").click()
    assert page.get_by_role("status").inner_text() == "Folder deleted."
    assert "Clients/Current" not in [f.name for f in web.store.list_folders(otto.id)]
    assert page.get_by_role("button", name="Delete folder INBOX").count() == 0
    assert page.errors == []


def test_search_by_sender_subject_and_body(web, otto, page):
    web.mail_many(ME, [
        b"From: Erin <erin@example.test>\r\nTo: otto@example.test\r\nSubject: Quarterly numbers\r\n"
        b"\r\nThe budget looks good.\r\n",
        b"From: Frank <frank@example.test>\r\nSubject: =?UTF-8?B?5Lya6K6u6YCa55+l?=\r\n"
        b"\r\nsee you\r\n",
    ])
    sign_in(page, web)
    search = page.get_by_role("searchbox")
    search.fill("erin")
    page.get_by_label("Search in").select_option("from")
    page.get_by_role("button", name="Search").click()
    assert page.locator("tbody tr").count() == 1
    assert page.get_by_role("status").inner_text() == "1 message matches “erin”."
    search.fill("BUDGET")
    page.get_by_label("Search in").select_option("body")
    page.get_by_role("button", name="Search").click()
    assert [r.inner_text() for r in page.locator("tbody td.subject").all()] == ["Quarterly numbers"]
    search.fill("会议")
    page.get_by_label("Search in").select_option("subject")
    page.get_by_role("button", name="Search").click()
    assert page.locator("tbody td.subject").inner_text() == "会议通知"
    search.fill("nothing like this")
    page.get_by_role("button", name="Search").click()
    assert page.locator("p.empty").inner_text() == "No messages match."
    page.get_by_role("link", name="Clear").click()
    assert page.locator("tbody tr").count() == 2
    assert page.errors == []


def test_spam_and_not_spam_buttons_move_and_train(web, page):
    """"Spam" moves the selection into Junk and trains it as spam for this
    user only; "Not spam" in Junk moves it back to the Inbox and undoes that."""
    import time
    me = "sally@example.test"
    user = web.add_user(me, PW, name="Sally")
    web.mail_many(me, [
        b"From: Win <win@lottery.example>\r\nSubject: You won a prize\r\n\r\nClaim it now.\r\n",
        b"From: Ann <ann@example.test>\r\nSubject: Minutes\r\n\r\nAttached below.\r\n",
    ])

    def totals():
        return web.store.bayes_totals([user.id]).get(user.id)

    def wait_for(pred, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            time.sleep(0.1)
        return False

    page.goto(web.url + "/coremail/")
    page.get_by_label("Email").fill(me)
    page.get_by_label("Password").fill(PW)
    page.get_by_role("button", name="Sign in").click()
    select(page, "You won a prize")
    page.get_by_role("button", name="Spam", exact=True).first.click()
    assert page.get_by_role("status").inner_text() == "Moved to Junk."
    assert [m.meta["subject"] for m in web.store.list_messages(
        web.folder(me, "Junk").id, with_meta=True)] == ["You won a prize"]
    assert wait_for(lambda: totals() == (1, 0))

    page.locator("aside").get_by_role("link", name="Junk").click()
    assert page.get_by_role("button", name="Spam", exact=True).count() == 0
    select(page, "You won a prize")
    page.get_by_role("button", name="Not spam").first.click()
    assert page.get_by_role("status").inner_text() == "Moved to Inbox."
    assert len(web.messages(me, "INBOX")) == 2
    assert wait_for(lambda: totals() == (0, 1))
    assert page.errors == []
