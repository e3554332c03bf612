"""The message trace in the browser, against a real `coremail start`: mail
from another server over port 25 (to ann, and to bob as a blind copy) and
mail ann sends from the webmail to a remote that is down (smtp-sink not
started yet, then up after a retry). The webadmin's "Message trace" page
finds them by subject words, sender, recipient and time range and tells each
as a timeline (received, filtered with its verdict, delivered, queued, each
attempt with the remote's reply and TLS, delivered remotely); the webmail's
"Where is my mail?" shows a user only their own mail and only their part of
it (bob does not see ann, ann does not see where bob's copy went). The
dashboard shows `coremail doctor`'s findings, with what to do, without
waiting for them. English and Chinese; screenshots in var/screenshots."""
from __future__ import annotations

import smtplib
import time

import pytest

from coremail.services.settings import set_values
from tests.support.dnsserver import ZoneServer
from tests.support.home import ADMIN_PASSWORD, make_home
from tests.support.peers import HAVE_SINK, Sink, free_port

from .conftest import shot

PW = "user-pass-1"
ANN, BOB, CARL = "ann@example.test", "bob@example.test", "carl@example.test"
SUBJECT = "Quarterly 发票 report"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not HAVE_SINK:
        pytest.skip("needs smtp-sink")
    zone = ZoneServer().start()
    zone.a("mail.example.test", "127.0.0.1")
    zone.mx("example.test", (10, "mail.example.test"))
    home = make_home(tmp_path_factory.mktemp("tracehome"), workers=1)
    home.sink = Sink(port=free_port())        # the remote: down until a test starts it
    set_values(home.path, {"delivery.relayhost": f"127.0.0.1:{home.sink.port}",
                           "delivery.retry_intervals": '["1h"]',
                           "delivery.connect_timeout": "2s",
                           "delivery.nameservers": f'["{zone.nameserver}"]'})
    for who in (ANN, BOB, CARL):
        home.userutil("add", who, "--password", PW, check=True)
    out = home.coremail("start", timeout=180)
    assert out.returncode == 0, out.stderr + out.stdout
    home.url = f"http://127.0.0.1:{home.ports['http']}"
    with smtplib.SMTP("127.0.0.1", home.ports["smtp"], timeout=30) as s:
        s.ehlo("mx.partner.test")
        s.sendmail("dora@partner.test", [ANN, BOB], (
            f"From: dora@partner.test\r\nTo: {ANN}\r\nSubject: =?UTF-8?B?"
            "UXVhcnRlcmx5IOWPkeelqCByZXBvcnQ=?=\r\nMessage-ID: <q1@partner.test>\r\n\r\n"
            "Numbers attached.\r\n").encode())
    try:
        yield home
    finally:
        home.coremail("shutdown", timeout=120)
        home.sink.stop()
        home.sink.remove()
        zone.stop()


def js_errors(page) -> list[str]:
    """Script errors and dialogs; not the 400 a test asks for itself."""
    return [e for e in page.errors if not e.startswith("Failed to load resource")]


def sign_in(page, served, where: str, login: str, password: str = PW):
    page.goto(f"{served.url}/{where}/login")
    page.get_by_label("Email").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def until(page, url: str, text: str, timeout: float = 20.0) -> str:
    """The page at ``url`` once it says ``text`` (the trace is written every half second)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        body = page.locator("main").inner_text()
        if text in body or time.monotonic() > deadline:
            assert text in body, body
            return body
        time.sleep(0.3)


def send_from_webmail(page, served):
    sign_in(page, served, "coremail", ANN)
    page.get_by_role("link", name="Compose").click()
    page.get_by_label("To").fill("far@remote.test")
    page.get_by_label("Subject").fill("Contract draft")
    page.get_by_label("Message").fill("Here it is.")
    page.get_by_role("button", name="Send").click()
    assert page.get_by_role("status").inner_text() == "Your message was sent."


def test_admin_trace_page_tells_each_message_as_a_timeline(served, page):
    send_from_webmail(page, served)
    page.context.clear_cookies()
    sign_in(page, served, "webadmin", "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="Message trace").click()
    assert "Search for a message to see what happened to it" in page.locator("main").inner_text()
    page.get_by_label("Subject words").fill("发票")
    page.get_by_role("button", name="Search").click()
    [story] = page.locator("article.story").all()
    text = story.inner_text()
    assert SUBJECT in text and "Message-ID <q1@partner.test>" in text
    for words in ("Received", "from mx.partner.test [127.0.0.1] on port 25 (MX)",
                  f"<dora@partner.test> to <{ANN}>, <{BOB}>", "Filtered",
                  "verdict: delivered as usual",
                  f"to the mailbox of {ANN}, folder INBOX", f"to the mailbox of {BOB}, folder INBOX"):
        assert words in text, (words, text)
    assert story.locator(".outcome").inner_text() == "delivered"
    shot(page, "webadmin-trace-subject")

    # The webmail's message: queued for a remote that is down, by recipient and time range.
    body = until(page, f"{served.url}/webadmin/trace?recipient=far%40remote.test&range=1h",
                 "not delivered yet, will retry")
    for words in (f"from the webmail (a browser at 127.0.0.1), signed in as {ANN}",
                  "Contract draft", "Queued", "for delivery to far@remote.test",
                  "Delivery attempt", "could not connect to"):
        assert words in body, (words, body)
    # A sender that sent nothing, and a bad time, say so in words.
    page.goto(f"{served.url}/webadmin/trace?sender=nobody%40nowhere.test")
    assert "Nothing recorded matches" in page.locator("main").inner_text()
    page.goto(f"{served.url}/webadmin/trace?q=x&from=yesterday")
    assert "A time is not in the form YYYY-MM-DD HH:MM." in page.locator("main").inner_text()
    page.goto(f"{served.url}/webadmin/trace?sender={ANN}&to=2000-01-01T00%3A00")
    assert "Nothing recorded matches" in page.locator("main").inner_text()

    # Up comes the remote: the retry is delivered, its reply and TLS shown.
    served.sink.start()
    served.coremail("queue", "flush", check=True)
    body = until(page, f"{served.url}/webadmin/trace?q=far%40remote.test", "Delivered remotely")
    assert "accepted by 127.0.0.1 [127.0.0.1]" in body and "250" in body
    sent = page.locator("li.k-sent")
    assert sent.locator(".tls").inner_text() == "no TLS"        # smtp-sink offers no STARTTLS
    assert page.locator("article.story .outcome").first.inner_text() == "delivered remotely"
    shot(page, "webadmin-trace-delivery")

    page.goto(f"{served.url}/coremail/lang/zh_CN?next=/webadmin/trace%3Fq%3Dfar%2540remote.test")
    zh = page.locator("main").inner_text()
    assert "邮件追踪" in zh and "已投递到对方服务器" in zh and "来自网页邮箱" in zh
    shot(page, "webadmin-trace-zh")
    assert not js_errors(page)


def test_where_is_my_mail_shows_a_user_only_their_part(served, page):
    sign_in(page, served, "coremail", BOB)
    page.get_by_role("link", name="Where is my mail?").click()
    body = until(page, f"{served.url}/coremail/whereis", SUBJECT)
    assert f"<dora@partner.test> to <{BOB}>" in body and f"to the mailbox of {BOB}" in body
    assert ANN not in body                        # a blind copy stays blind
    assert "Contract draft" not in body           # ann's own mail is not bob's business
    shot(page, "webmail-whereis-bob")

    page.context.clear_cookies()
    sign_in(page, served, "coremail", ANN)
    body = until(page, f"{served.url}/coremail/whereis?range=24h", "Contract draft")
    assert SUBJECT in body and BOB not in body
    assert "Delivery attempt" in body and "could not connect to" in body
    page.get_by_label("Address, subject words or Message-ID").fill("contract")
    page.get_by_role("button", name="Search").click()
    assert page.locator("article.story").count() == 1
    shot(page, "webmail-whereis-ann")
    page.goto(f"{served.url}/coremail/lang/zh_CN?next=/coremail/whereis")
    zh = page.locator("main").inner_text()
    assert "我的邮件在哪里？" in zh and "已接收" in zh
    shot(page, "webmail-whereis-zh")

    page.context.clear_cookies()
    sign_in(page, served, "coremail", CARL)
    body = until(page, f"{served.url}/coremail/whereis?q={ANN}", "Nothing recorded")
    assert "Contract" not in body and "Quarterly" not in body
    assert not js_errors(page)


def test_dashboard_shows_the_doctor_without_waiting(served, page):
    sign_in(page, served, "webadmin", "admin", ADMIN_PASSWORD)
    t = time.monotonic()
    page.goto(served.url + "/webadmin/")
    assert time.monotonic() - t < 5
    panel = page.locator("#doctor")
    # The page reloads itself (a meta refresh, no script) until the checks are in.
    panel.locator("ul.findings").first.wait_for(timeout=60_000)
    text = panel.inner_text()
    assert "checks at" in text and "failed" in text
    assert "spf example.test" in text and "What to do:" in text   # no SPF record published
    assert "mx example.test" not in panel.locator("ul.findings").first.inner_text()  # MX is ok
    shot(page, "webadmin-dashboard-doctor")
    page.get_by_role("button", name="Check again").click()
    page.locator("#doctor ul.findings").first.wait_for(timeout=60_000)
    page.goto(f"{served.url}/coremail/lang/zh_CN?next=/webadmin/%23doctor")
    assert "健康检查" in page.locator("#doctor").inner_text()
    assert "处理办法：" in page.locator("#doctor").inner_text()
    shot(page, "webadmin-dashboard-doctor-zh")
    assert not js_errors(page)
