"""The webadmin in Chromium against a real `coremail start` (supervisor and
every service on loopback ports): a plain user is refused; the admin adds a
user who logs in over IMAP, lowers a quota and SMTP refuses with 5.2.2,
disables the user and IMAP refuses; limits.max_message_size changed on the
page is what `coremail config get` says, and the other way round; a message
held for a down remote shows on the queue page and leaves after a flush once
the remote is up; pop3 (and web itself, after a confirmation) restarted from
the services page; domains, aliases and forwards are the data userutil sees;
a POST without its CSRF token changes nothing; the audit log lists each
change. Screenshots of the dashboard, users and settings pages."""
from __future__ import annotations

import imaplib
import smtplib
import ssl
import time
import urllib.error
import urllib.request

import pytest

from coremail.services.settings import set_values
from tests.support.home import ADMIN_PASSWORD, make_home
from tests.support.peers import HAVE_SINK, Sink, free_port

from .conftest import shot

PW = "user-pass-1"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("adminhome"), workers=1)
    home.remote_port = free_port()
    set_values(home.path, {"delivery.relayhost": f"127.0.0.1:{home.remote_port}",
                           "delivery.retry_intervals": '["1h"]',
                           "delivery.connect_timeout": "2s"})
    home.userutil("add", "plain@example.test", "--password", PW, "--quota", "10K", check=True)
    out = home.coremail("start", timeout=180)
    assert out.returncode == 0, out.stderr + out.stdout
    home.url = f"http://127.0.0.1:{home.ports['http']}"
    yield home
    home.coremail("shutdown", timeout=120)


def sign_in(page, served, login="admin", password=ADMIN_PASSWORD):
    page.goto(served.url + "/webadmin/")
    page.get_by_label("Email").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def js_errors(page) -> list[str]:
    """Script errors and dialogs; not the 4xx statuses a test asks for itself."""
    return [e for e in page.errors if not e.startswith("Failed to load resource")]


def status_pid(served, service: str) -> str:
    for line in served.coremail("status", check=True).stdout.splitlines():
        f = line.split("\t")
        if f[0] == service:
            return f[2]
    raise AssertionError(service)


def test_a_plain_user_is_refused(served, page):
    sign_in(page, served, "plain@example.test", PW)
    assert page.get_by_role("alert").inner_text() == "This account may not use this console."
    assert not [c for c in page.context.cookies() if c["name"] == "cm_session"]
    page.goto(served.url + "/coremail/login")          # signed in to the webmail instead
    page.get_by_label("Email").fill("plain")
    page.get_by_label("Password").fill(PW)
    page.get_by_role("button", name="Sign in").click()
    page.goto(served.url + "/webadmin/users")
    assert page.locator("h1").inner_text() == "Not allowed"
    assert page.locator("nav.side").count() == 0          # no half-rendered console
    [cookie] = [c for c in page.context.cookies() if c["name"] == "cm_session"]
    req = urllib.request.Request(served.url + "/webadmin/users",
                                 headers={"Cookie": f"cm_session={cookie['value']}"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403
    assert js_errors(page) == []


def test_users_quota_and_disable(served, page):
    sign_in(page, served)
    assert page.locator("h1").inner_text() == "Dashboard"
    page.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="Add a user").click()
    page.get_by_label("Address", exact=True).fill("Nina@Example.TEST")
    page.get_by_label("Display name").fill("Nina Novak")
    page.get_by_label("Password", exact=True).fill(PW)
    page.get_by_label("Password again").fill(PW)
    page.get_by_label("Quota").fill("10M")
    page.get_by_role("button", name="Add user").click()
    assert page.locator("h1").inner_text() == "nina@example.test"      # normalised
    assert "The user nina@example.test was added." in page.locator(".notice").inner_text()
    imap = imaplib.IMAP4("127.0.0.1", served.ports["imap"])
    assert imap.login("nina@example.test", PW)[0] == "OK"
    imap.logout()

    page.get_by_label("Quota").fill("1K")
    page.get_by_role("button", name="Save", exact=True).click()
    assert "The changes to nina@example.test were saved." in page.locator(".notice").inner_text()
    deadline, reply = time.monotonic() + 15, None
    with smtplib.SMTP("127.0.0.1", served.ports["smtp"], timeout=30) as s:
        s.ehlo("client.test")
        while time.monotonic() < deadline:
            s.mail("someone@remote.test", ["SIZE=5000"])
            reply = s.rcpt("nina@example.test")
            s.rset()
            if reply[0] == 552:
                break
            time.sleep(0.5)
    assert reply[0] == 552 and b"5.2.2" in reply[1], reply

    page.get_by_label("Enabled").uncheck()
    page.get_by_role("button", name="Save", exact=True).click()
    assert page.get_by_label("Enabled").is_checked() is False
    imap = imaplib.IMAP4("127.0.0.1", served.ports["imap"])
    with pytest.raises(imaplib.IMAP4.error):
        imap.login("nina@example.test", PW)
    imap.logout()

    page.goto(served.url + "/webadmin/users?q=nina")
    row = page.locator("table.users tbody tr")
    assert row.count() == 1 and "disabled" in row.inner_text()
    with smtplib.SMTP("127.0.0.1", served.ports["smtp"], timeout=30) as s:   # a quota bar to see
        s.sendmail("someone@remote.test", ["plain@example.test"], b"Subject: fill\r\n\r\n"
                   + b"x" * 70 * 60 + b"\r\n")
    page.goto(served.url + "/webadmin/users")
    meter = page.locator("table.users tr", has_text="plain@example.test").locator("meter")
    assert 0.3 < float(meter.get_attribute("value")) / 10240 < 0.6
    shot(page, "webadmin-users")
    assert js_errors(page) == []


def test_settings_page_and_config_get_agree(served, page):
    sign_in(page, served)
    page.goto(served.url + "/webadmin/settings")
    field = page.get_by_label("limits.max_message_size")
    assert field.input_value() == "50M"
    field.fill("lots")
    page.locator("#s-limits").get_by_role("button", name="Save [limits]").click()
    err = page.locator(".setting.invalid .field-error").inner_text()
    assert "limits.max_message_size" not in err and "K, M or G" in err, err
    assert served.coremail("config", "get", "limits.max_message_size").stdout.strip() == "50M"
    page.get_by_label("limits.max_message_size").fill("20M")
    page.locator("#s-limits").get_by_role("button", name="Save [limits]").click()
    assert "Saved: limits.max_message_size" in page.locator(".notice").inner_text()
    assert served.coremail("config", "get", "limits.max_message_size").stdout.strip() == "20M"
    deadline, size = time.monotonic() + 5, None      # live in the running SMTP service
    while time.monotonic() < deadline and size != str(20 << 20):
        with smtplib.SMTP("127.0.0.1", served.ports["smtp"], timeout=30) as s:
            s.ehlo("client.test")
            size = s.esmtp_features.get("size")
        time.sleep(0.2)
    assert size == str(20 << 20)

    served.coremail("config", "set", "limits.max_message_size", "30M", check=True)
    page.goto(served.url + "/webadmin/settings")
    assert page.get_by_label("limits.max_message_size").input_value() == "30M"
    assert page.get_by_label("policy.allow_sender_mismatch").input_value() == "false"
    help_text = page.locator("#h-limits\\.max_message_size").inner_text()
    assert "552 5.3.4" in help_text and "Allowed:" in help_text
    # Every key of every section of the typed configuration is on the page.
    from coremail.config import Settings
    for section, f in Settings.model_fields.items():
        for name in f.annotation.model_fields:
            assert page.locator(f"[name='k:{section}.{name}']").count() == 1, (section, name)
    shot(page, "webadmin-settings")
    assert js_errors(page) == []


@pytest.mark.skipif(not HAVE_SINK, reason="smtp-sink (postfix) is missing")
def test_queue_held_for_a_down_remote_leaves_after_flush(served, page):
    with smtplib.SMTP("127.0.0.1", served.ports["submission"], timeout=30) as s:
        s.starttls(context=ssl._create_unverified_context())
        s.login("plain@example.test", PW)
        s.sendmail("plain@example.test", ["far@remote.test"],
                   b"From: plain@example.test\r\nTo: far@remote.test\r\nSubject: held\r\n\r\nhi\r\n")
    sign_in(page, served)
    deadline = time.monotonic() + 20
    while True:
        page.goto(served.url + "/webadmin/queue")
        rows = page.locator("table.queue tbody tr[id^=q-]")
        if rows.count() == 1 and "not tried yet" not in rows.inner_text():
            break
        assert time.monotonic() < deadline, page.locator("main").inner_text()
        time.sleep(0.5)
    text = rows.inner_text()
    assert "far@remote.test" in text and "plain@example.test" in text and "in 59m" in text, text
    sink = Sink(port=served.remote_port).start()
    try:
        rows.get_by_role("button", name="Retry now").click()
        assert "1 message(s) will be retried now." in page.locator(".notice").inner_text()
        deadline = time.monotonic() + 20
        while "The queue is empty." not in page.locator("main").inner_text():
            assert time.monotonic() < deadline
            time.sleep(0.5)
            page.goto(served.url + "/webadmin/queue")
        assert len(sink.files()) == 1
    finally:
        sink.stop()
        sink.remove()
    page.goto(served.url + "/webadmin/")
    assert page.locator(".tile").nth(1).locator(".n").inner_text() == "1"   # sent out
    shot(page, "webadmin-dashboard")
    assert js_errors(page) == []


def test_restart_pop3_from_the_services_page_and_the_banner(served, page):
    sign_in(page, served)
    before = status_pid(served, "pop3")
    page.goto(served.url + "/webadmin/services")
    page.get_by_role("button", name="restart pop3").click()
    assert "pop3 was restarted." in page.locator(".notice").inner_text()
    after = status_pid(served, "pop3")
    assert after.isdigit() and after != before
    assert page.locator("#svc-pop3 .pid").inner_text() == after
    page.get_by_role("button", name="stop pop3").click()
    banner = page.locator(".banner").inner_text()
    assert "The pop3 service is stopped." in banner and "POP3 mail programs cannot" in banner
    page.goto(served.url + "/webadmin/users")                 # on every page
    assert "The pop3 service is stopped." in page.locator(".banner").inner_text()
    page.goto(served.url + "/webadmin/services")
    page.get_by_role("button", name="start pop3").click()
    assert page.locator(".banner").count() == 0
    assert js_errors(page) == []


def test_restart_web_asks_first_and_the_page_comes_back(served, page):
    sign_in(page, served)
    before = status_pid(served, "web")
    page.goto(served.url + "/webadmin/services")
    page.get_by_role("button", name="restart web").click()
    assert "Restart the web service?" in page.locator(".confirm").inner_text()
    assert status_pid(served, "web") == before
    page.get_by_role("button", name="Yes, restart web").click()
    assert "restarting" in page.locator("h1").inner_text()
    page.wait_for_url("**/webadmin/services", timeout=60000)
    page.locator("#svc-web").wait_for(timeout=10000)
    after = status_pid(served, "web")
    assert after != before and page.locator("#svc-web .pid").inner_text() == after
    assert js_errors(page) == []


def test_domains_aliases_and_forwards_are_userutil_data(served, page):
    sign_in(page, served)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "cm_session"]
    forged = urllib.request.Request(served.url + "/webadmin/domains/add", data=b"domain=forged.test",
                                    headers={"Cookie": f"cm_session={cookie['value']}"})
    with pytest.raises(urllib.error.HTTPError) as e:          # no CSRF token: nothing changes
        urllib.request.urlopen(forged, timeout=10)
    assert e.value.code == 403
    assert "forged.test" not in served.userutil("domain", "list", check=True).stdout
    page.goto(served.url + "/webadmin/domains")
    page.get_by_label("New domain").fill("Other.TEST")
    page.get_by_role("button", name="Add domain").click()
    assert "The domain other.test was added." in page.locator(".notice").inner_text()
    assert "other.test" in served.userutil("domain", "list", check=True).stdout
    served.userutil("add", "olga@other.test", "--password", PW, check=True)
    page.goto(served.url + "/webadmin/domains")
    row = page.locator("table.grid-table tr", has_text="other.test")
    assert "1" in row.locator("td.r").first.inner_text()                  # its user count
    row.get_by_role("button", name="Delete other.test").click()
    assert "still has 1 user(s); delete them first" in page.get_by_role("alert").inner_text()
    page.goto(served.url + "/webadmin/aliases")
    page.get_by_label("Alias", exact=True).fill("sales@other.test")
    page.get_by_label("Delivers to").fill("olga@other.test")
    page.get_by_role("button", name="Add alias").click()
    assert "sales@other.test" in served.userutil("alias", "list", check=True).stdout
    page.goto(served.url + "/webadmin/user/olga@other.test")
    page.get_by_label("Forward to").fill("olga@remote.test")
    page.get_by_label("Keep a copy here").check()
    page.get_by_role("button", name="Save forward").click()
    assert "The auto-forward of olga@other.test was saved." in page.locator(".notice").inner_text()
    page.goto(served.url + "/webadmin/aliases")
    assert "olga@remote.test" in page.locator("table.grid-table").nth(1).inner_text()
    page.goto(served.url + "/webadmin/user/olga@other.test/delete")
    page.get_by_label("Type the address to confirm").fill("olga@other.test")
    page.get_by_role("button", name="Delete for good").click()
    assert "The user olga@other.test and all of their mail were deleted." in \
        page.locator(".notice").inner_text()
    assert "olga@other.test" not in served.userutil("list", check=True).stdout
    page.goto(served.url + "/webadmin/domains")
    page.get_by_role("button", name="Delete other.test").click()
    assert "The domain other.test was deleted." in page.locator(".notice").inner_text()
    assert js_errors(page) == []


def test_the_audit_log_lists_each_change(served, page):
    sign_in(page, served)
    page.goto(served.url + "/webadmin/audit")
    text = page.locator("table.audit").inner_text()
    for action, target in (("user.add", "nina@example.test"), ("user.quota", "nina@example.test"),
                           ("user.enabled", "nina@example.test"),
                           ("setting.set", "limits.max_message_size"), ("queue.flush", ""),
                           ("service.restart", "pop3"), ("service.stop", "pop3"),
                           ("domain.add", "other.test"), ("domain.delete", "other.test"),
                           ("alias.add", "sales@other.test"), ("forward.set", "olga@other.test"),
                           ("user.delete", "olga@other.test"),
                           ("service.restart", "web")):
        assert action in text and target in text, (action, target)
    assert "admin@example.test" in text and "127.0.0.1" in text
    shell = [r for r in page.locator("table.audit tbody tr").all_inner_texts() if "(shell)" in r]
    assert any("setting.set" in r and "20M" in r and "30M" in r for r in shell), shell
    page.get_by_label("Action").select_option("user.")
    page.get_by_label("Text").fill("nina")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit tbody tr")
    assert rows.count() == 3, rows.all_inner_texts()    # add, quota, enabled
    quota = [r for r in rows.all_inner_texts() if "user.quota" in r][0]
    assert "10M" in quota and "1K" in quota              # before and after
    assert js_errors(page) == []
