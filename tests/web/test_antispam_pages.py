"""The anti-spam web faces in Chromium against a real `coremail start`:
the webadmin's Anti-spam page adds a block rule and a junk rule, and mail
from those senders sent with smtplib is refused at RCPT or lands in Junk
(read over IMAP) as the page said, with the hit counted on the page; bad
settings and bad rules are refused in words, good settings are what
`coremail config get` says; the "test a message" form prints exactly what
`coremail filter test` prints; every change is in the audit log. In the
webmail, a user's own block list sends that sender's mail to Junk for that
user only, and their allow list keeps a server-junked sender in their
inbox. Screenshots in English and Chinese."""
from __future__ import annotations

import email.utils
import imaplib
import re
import smtplib
import time

import pytest

from coremail.services.settings import set_values
from tests.support.dnsserver import ZoneServer
from tests.support.home import ADMIN_PASSWORD, make_home

from .conftest import shot

D = "example.test"
PW = "user-pass-1"
AMY, BOB = f"amy@{D}", f"bob@{D}"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    dns = ZoneServer().start()          # the internet's DNS: nothing is published there
    home = make_home(tmp_path_factory.mktemp("spamweb"), D, workers=1)
    set_values(home.path, {"delivery.nameservers": f'["{dns.nameserver}"]'})
    for user in (AMY, BOB):
        home.userutil("add", user, "--password", PW, check=True)
    out = home.coremail("start", timeout=180)
    assert out.returncode == 0, out.stderr + out.stdout
    home.url = f"http://127.0.0.1:{home.ports['http']}"
    try:
        yield home
    finally:
        home.coremail("shutdown", timeout=120)
        dns.stop()


def admin_in(page, served):
    page.goto(served.url + "/webadmin/antispam")
    page.get_by_label("Email").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert page.locator("h1").inner_text() == "Anti-spam"


def js_errors(page) -> list[str]:
    """Script errors and dialogs; not the 4xx statuses a test asks for itself."""
    return [e for e in page.errors if not e.startswith("Failed to load resource")]


def user_in(page, served, user):
    page.goto(served.url + "/coremail/login")
    page.get_by_label("Email").fill(user)
    page.get_by_label("Password").fill(PW)
    page.get_by_role("button", name="Sign in").click()
    page.goto(served.url + "/coremail/settings")


def add_rule(page, kind: str, pattern: str, action: str, points: str = "") -> int:
    form = page.locator("#add-rule")
    form.get_by_label("Kind").select_option(kind)
    form.get_by_label("Pattern").fill(pattern)
    form.get_by_label("Action").select_option(action)
    form.get_by_label("Points").fill(points)
    form.get_by_role("button", name="Add rule").click()
    notice = page.locator(".notice").inner_text()
    m = re.search(r"Rule (\d+) was added\.", notice)
    assert m, page.locator("main").inner_text()
    return int(m.group(1))


def message(subject: str, sender: str, to: str, body: str = "a short note") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: {email.utils.formatdate()}\r\nMessage-ID: {email.utils.make_msgid()}\r\n"
            f"\r\n{body}\r\n").encode()


def send(served, sender: str, rcpts: list[str], data: bytes) -> dict[str, tuple[int, str]]:
    """Every RCPT reply, then DATA for those taken; {recipient: (code, text)}."""
    out = {}
    with smtplib.SMTP("127.0.0.1", served.ports["smtp"], timeout=20) as s:
        s.ehlo("client.remote.test")
        s.mail(sender)
        for r in rcpts:
            code, text = s.rcpt(r)
            out[r] = (code, text.decode())
        if any(c == 250 for c, _ in out.values()):
            code, text = s.data(data)
            out["DATA"] = (code, text.decode())
    return out


def until(fn, timeout: float = 10.0):
    """fn() once it is truthy (rules reach the SMTP workers within 2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


def folder_of(served, user: str, subject: str) -> list[str]:
    """The folders (INBOX, Junk) holding a message with this subject."""
    c = imaplib.IMAP4("127.0.0.1", served.ports["imap"], timeout=10)
    try:
        c.login(user, PW)
        found = []
        for folder in ("INBOX", "Junk"):
            c.select(folder, readonly=True)
            _, data = c.search(None, "SUBJECT", f'"{subject}"')
            found += [folder] * len(data[0].split())
        return found
    finally:
        c.logout()


def test_a_block_rule_added_on_the_page_refuses_that_sender(served, page):
    admin_in(page, served)
    page.locator("#add-rule").get_by_label("Kind").select_option("ip")
    page.locator("#add-rule").get_by_label("Pattern").fill("999.1.2.3")
    page.locator("#add-rule").get_by_role("button", name="Add rule").click()
    err = page.get_by_role("alert").inner_text()
    assert "The rule was not added" in err and "is not an IP address or CIDR" in err, err

    block = add_rule(page, "sender", "Spammer@Bad.TEST", "reject")
    row = page.locator(f"#rule-{block}")
    assert "spammer@bad.test" in row.inner_text() and "refuse" in row.inner_text()
    assert row.locator("td.hits").inner_text() == "0"
    junk = add_rule(page, "sender", "@junk.test", "junk")
    assert f"{block}\tsender\tspammer@bad.test\treject\tserver\thits=0" in \
        served.coremail("filter", "list", check=True).stdout      # the CLI sees the same rules

    def refused():
        r = send(served, "spammer@bad.test", [AMY], message("spam", "spammer@bad.test", AMY))
        return r if r[AMY][0] == 550 else None
    got = until(refused)
    assert got and got[AMY] == (550, "5.7.1 sender is on this server's block list"), got
    r = send(served, "news@junk.test", [AMY], message("junk news", "news@junk.test", AMY))
    assert r["DATA"][0] == 250
    assert until(lambda: folder_of(served, AMY, "junk news")) == ["Junk"]

    def hits() -> tuple[str, str]:     # counted in a batch within seconds
        page.goto(served.url + "/webadmin/antispam")
        return tuple(page.locator(f"#rule-{n} td.hits").inner_text() for n in (block, junk))
    assert until(lambda: hits() == ("1", "1")), hits()
    shot(page, "webadmin-antispam")
    page.goto(served.url + "/coremail/lang/zh_CN?next=/webadmin/antispam")
    assert page.locator("h1").inner_text() == "反垃圾邮件"
    assert "黑名单和白名单" in page.locator("main").inner_text()
    shot(page, "webadmin-antispam-zh")
    page.goto(served.url + "/coremail/lang/en?next=/webadmin/antispam")
    assert js_errors(page) == []


def test_settings_are_checked_and_saved_as_config_set_does(served, page):
    admin_in(page, served)
    form = page.locator("#s-antispam")
    for key in ("antispam.junk_score", "antispam.dnsbl", "antispam.bayes",
                "authentication.spf", "authentication.dmarc"):
        assert form.locator(f"[name='k:{key}']").count() == 1, key
    form.get_by_label("antispam.dnsbl", exact=True).fill("zen.spamhaus.org\nnot a zone!")
    form.get_by_label("antispam.reject_score").fill("3")
    form.get_by_role("button", name="Save anti-spam settings").click()
    errors = page.locator(".setting.invalid .field-error").all_inner_texts()
    assert any("'not a zone!' is not a DNS zone name" in e for e in errors), errors
    assert any("below junk_score (6)" in e for e in errors), errors
    assert served.coremail("config", "get", "antispam.dnsbl").stdout.strip() == "[]"
    assert served.coremail("config", "get", "antispam.reject_score").stdout.strip() == "15.0"
    shot(page, "webadmin-antispam-invalid")

    page.goto(served.url + "/webadmin/antispam")
    form = page.locator("#s-antispam")
    form.get_by_label("antispam.junk_score", exact=True).fill("5.5")
    form.get_by_label("antispam.fingerprint_threshold").fill("80")
    form.get_by_role("button", name="Save anti-spam settings").click()
    notice = page.locator(".notice").inner_text()
    assert "antispam.junk_score" in notice and "antispam.fingerprint_threshold" in notice
    assert served.coremail("config", "get", "antispam.junk_score").stdout.strip() == "5.5"
    assert page.locator("#s-antispam").get_by_label("antispam.junk_score", exact=True).input_value() == "5.5"
    served.coremail("config", "set", "antispam.junk_score", "6.0", check=True)
    assert js_errors(page) == []


def test_the_test_form_prints_what_filter_test_prints(served, page, tmp_path):
    admin_in(page, served)
    rule = add_rule(page, "keyword", "rolex", "score", "9")
    raw = message("ROLEX for you", "seller@shop.remote.test", AMY, "a cheap rolex").decode()
    page.get_by_label("The raw message").fill(raw.replace("\r\n", "\n"))
    page.get_by_label("Client IP address").fill("192.0.2.9")
    page.get_by_role("button", name="Test the message").click()
    shown = page.locator("pre.report").inner_text().splitlines()
    assert f"  KEYWORD_SCORE_{rule} +9  the server's rule {rule}: keyword 'rolex'" in shown
    assert f"result: accepted ({AMY} -> Junk)" in shown, shown
    eml = tmp_path / "test.eml"
    eml.write_text(raw)
    cli = served.coremail("filter", "test", str(eml), "--ip", "192.0.2.9", check=True)
    assert shown == cli.stdout.splitlines()          # the very same engine and words
    assert page.locator(f"#rule-{rule} td.hits").inner_text() == "0"     # nothing counted
    shot(page, "webadmin-antispam-test")

    page.goto(served.url + "/webadmin/antispam")      # a file instead of pasted text
    spam = message("from a spammer", "spammer@bad.test", BOB)
    eml.write_bytes(spam)
    page.get_by_label("Or a message file").set_input_files(str(eml))
    page.get_by_role("button", name="Test the message").click()
    shown = page.locator("pre.report").inner_text()
    assert f"RCPT TO:<{BOB}>: 550 5.7.1 sender is on this server's block list" in shown
    assert "result: refused: 554 5.5.1 no recipient was accepted" in shown, shown
    page.goto(served.url + "/coremail/lang/zh_CN?next=/webadmin/antispam")
    page.get_by_label("原始邮件").fill(raw.replace("\r\n", "\n"))
    page.get_by_role("button", name="测试这封邮件").click()
    assert "测试结果" in page.locator("#test-result").inner_text()
    shot(page, "webadmin-antispam-test-zh")
    page.goto(served.url + "/coremail/lang/en?next=/webadmin/antispam")
    page.get_by_role("button", name="Test the message").click()
    assert "Paste a message" in page.get_by_role("alert").inner_text()
    assert js_errors(page) == []


def test_deleting_a_rule_and_the_audit_log(served, page):
    admin_in(page, served)
    rule = add_rule(page, "header", "X-Mailer: (?i)bulk", "junk")
    page.get_by_role("button", name=f"Delete rule {rule}").click()
    assert f"Rule {rule} was deleted." in page.locator(".notice").inner_text()
    assert page.locator(f"#rule-{rule}").count() == 0
    assert f"{rule}\theader" not in served.coremail("filter", "list", check=True).stdout
    page.goto(served.url + "/webadmin/audit?action=filter.")
    text = page.locator("table.audit").inner_text()
    assert "filter.add" in text and "spammer@bad.test reject (server)" in text
    assert "filter.delete" in text and f"rule {rule}" in text
    page.goto(served.url + "/webadmin/audit?action=setting.")
    assert "antispam.junk_score" in page.locator("table.audit").inner_text()
    assert js_errors(page) == []


def test_a_users_own_block_list_junks_that_sender_for_that_user_only(served, page):
    user_in(page, served, AMY)
    card = page.locator("#senders")
    assert "Nobody is blocked or allowed." in card.inner_text()
    card.get_by_label("Address or domain").fill("not an address!")
    card.get_by_role("button", name="Add to my list").click()
    assert "is not an address or a domain" in page.locator("#sender-error").inner_text()
    card.get_by_label("Address or domain").fill("Offers@Promo.TEST")
    card.get_by_label("Their mail").select_option("junk")
    card.get_by_role("button", name="Add to my list").click()
    assert page.get_by_role("status").inner_text() == "offers@promo.test is on your list now."
    card.get_by_label("Address or domain").fill("junk.test")          # a bare domain
    card.get_by_label("Their mail").select_option("allow")
    card.get_by_role("button", name="Add to my list").click()
    rows = card.locator("tbody tr").all_inner_texts()
    assert any("offers@promo.test" in r and "Blocked: goes to Junk" in r for r in rows), rows
    assert any("junk.test" in r and "everyone at this domain" in r and "Allowed" in r
               for r in rows), rows
    shot(page, "webmail-own-lists")

    # Amy's block: her copy in Junk, Bob's in his inbox.
    time.sleep(2.5)                      # the SMTP worker reads new rules every 2 s
    r = send(served, "offers@promo.test", [AMY, BOB],
             message("offer 1", "offers@promo.test", f"{AMY}, {BOB}"))
    assert r["DATA"][0] == 250, r
    assert until(lambda: folder_of(served, AMY, "offer 1")) == ["Junk"]
    assert until(lambda: folder_of(served, BOB, "offer 1")) == ["INBOX"]
    # Amy's allow of junk.test beats the server's junk rule for her only.
    send(served, "news@junk.test", [AMY, BOB], message("news 2", "news@junk.test", AMY))
    assert until(lambda: folder_of(served, AMY, "news 2")) == ["INBOX"]
    assert until(lambda: folder_of(served, BOB, "news 2")) == ["Junk"]

    page.goto(served.url + "/coremail/lang/zh_CN?next=/coremail/settings")
    assert "拦截和允许的发件人" in page.locator("#senders").inner_text()
    assert "已拦截：进入垃圾邮件" in page.locator("#senders").inner_text()
    shot(page, "webmail-own-lists-zh")
    page.goto(served.url + "/coremail/lang/en?next=/coremail/settings")
    page.get_by_role("button", name="Remove offers@promo.test").click()
    assert page.get_by_role("status").inner_text() == "offers@promo.test was taken off your list."
    assert "offers@promo.test" not in served.coremail("filter", "list", check=True).stdout
    assert js_errors(page) == []


def test_a_user_sees_and_deletes_only_their_own_rules(served, page):
    user_in(page, served, BOB)
    assert "Nobody is blocked or allowed." in page.locator("#senders").inner_text()
    amy_rule = next(line.split("\t")[0] for line in served.coremail(
        "filter", "list", check=True).stdout.splitlines() if f"\t{AMY}\t" in line)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "cm_session"]
    csrf = page.locator("#senders input[name=csrf]").first.get_attribute("value")
    resp = page.request.post(served.url + "/coremail/settings/senders-delete",
                             form={"csrf": csrf, "id": amy_rule},
                             headers={"Cookie": f"cm_session={cookie['value']}"})
    assert resp.ok
    assert f"{amy_rule}\tsender" in served.coremail("filter", "list", check=True).stdout
    assert js_errors(page) == []
