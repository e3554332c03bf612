"""DSN building: parse the bytes back with `email` and check what a client would see."""

from __future__ import annotations

import email
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coremail.mail.domain_hint import edit_distance, suggest_domain
from coremail.mail.dsn import (
    SUBJECT_DELAYED,
    SUBJECT_FAILED,
    RecipientFailure,
    build_dsn,
    explain,
    should_bounce,
)

ARRIVAL = datetime(2024, 3, 1, 9, 30, tzinfo=timezone.utc)
LAST = ARRIVAL + timedelta(days=5)
ORIGINAL = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: bob@remote.test\r\n"
    b"Subject: Quarterly figures\r\n"
    b"Message-ID: <abc123@example.test>\r\n"
    b"\r\n"
    b"The secret body must not be returned.\r\n"
)


def fail(recipient: str = "bob@remote.test", status: str = "5.1.1",
         diagnostic: str | None = "550 5.1.1 <bob@remote.test>: user unknown",
         action: str = "failed", remote_mta: str | None = "mx.remote.test",
         **kw) -> RecipientFailure:
    return RecipientFailure(recipient=recipient, status=status, action=action,  # type: ignore[arg-type]
                            remote_mta=remote_mta, diagnostic=diagnostic, last_attempt=LAST, **kw)


def build(failures: list[RecipientFailure], **kw) -> bytes:
    args = dict(reporting_mta="mail.example.test", original_sender="alice@example.test",
                original_headers=ORIGINAL, original_envelope_id="QQ-314",
                arrival_date=ARRIVAL, failures=failures, postmaster="postmaster@example.test")
    args.update(kw)
    return build_dsn(**args)  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def parts(raw: bytes) -> tuple[EmailMessage, str, list, str]:
    msg = parse(raw)
    human, status, headers = msg.iter_parts()
    return msg, human.get_content(), status.get_payload(), headers.get_content()


def human_text(failure: RecipientFailure, **kw) -> str:
    text = parts(build([failure], **kw))[1]
    return " ".join(text.split())  # undo the wrapping


def assert_wire_format(raw: bytes) -> None:
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF"
    assert b"\r" not in raw.replace(b"\r\n", b""), "bare CR"
    assert raw.endswith(b"\r\n")
    assert max(len(line) for line in raw.split(b"\r\n")) < 998
    assert raw.isascii()


# -- structure ---------------------------------------------------------------


def test_structure_and_top_headers():
    raw = build([fail()])
    assert_wire_format(raw)
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert [p.get_content_type() for p in msg.iter_parts()] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.example.test"
    assert msg["From"].addresses[0].display_name == "Mail Delivery System"
    assert msg["To"].addresses[0].addr_spec == "alice@example.test"
    assert msg["Subject"] == SUBJECT_FAILED
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"].datetime.tzinfo is not None
    assert msg["Message-ID"].endswith("@mail.example.test>")


def test_message_ids_are_fresh():
    assert parse(build([fail()]))["Message-ID"] != parse(build([fail()]))["Message-ID"]


def test_delivery_status_fields():
    failures = [fail(), fail("carol@other.test", "5.2.2", "552 5.2.2 mailbox full",
                             remote_mta="mx.other.test", original_recipient="Carol@Other.test")]
    _, _, blocks, _ = parts(build(failures))
    per_message, first, second = blocks
    assert per_message["Reporting-MTA"] == "dns; mail.example.test"
    assert per_message["Original-Envelope-Id"] == "QQ-314"
    assert parsedate_to_datetime(per_message["Arrival-Date"]) == ARRIVAL

    assert first["Final-Recipient"] == "rfc822; bob@remote.test"
    assert first["Action"] == "failed"
    assert first["Status"] == "5.1.1"
    assert first["Remote-MTA"] == "dns; mx.remote.test"
    assert first["Diagnostic-Code"] == "smtp; 550 5.1.1 <bob@remote.test>: user unknown"
    assert parsedate_to_datetime(first["Last-Attempt-Date"]) == LAST
    assert "Original-Recipient" not in first

    assert second["Original-Recipient"] == "rfc822; Carol@Other.test"
    assert second["Final-Recipient"] == "rfc822; carol@other.test"
    assert second["Status"] == "5.2.2"


def test_optional_fields_left_out():
    failure = RecipientFailure("bob@remote.test", "5.1.2", "failed", None, None, None)
    _, _, (per_message, rcpt), _ = parts(build([failure], original_envelope_id=None))
    assert "Original-Envelope-Id" not in per_message
    for name in ("Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date"):
        assert name not in rcpt


def test_own_words_are_not_labelled_smtp():
    failure = fail("x@nowhere.test", "5.1.2", "domain nowhere.test does not exist", remote_mta=None)
    _, _, (_, rcpt), _ = parts(build([failure]))
    assert rcpt["Diagnostic-Code"] == "X-Coremail; domain nowhere.test does not exist"


def test_multiline_reply_is_one_field_and_folded():
    reply = ("550-5.1.1 The email account that you tried to reach does not exist. Please\r\n"
             "550-5.1.1 try double-checking the recipient's email address for typos or\r\n"
             "550 5.1.1 unnecessary spaces. " + "x" * 2000)
    raw = build([fail(diagnostic=reply)])
    assert_wire_format(raw)
    assert b"=?" not in raw  # no encoded-words in report fields
    _, _, (_, rcpt), _ = parts(raw)
    assert rcpt["Diagnostic-Code"].startswith("smtp; 550-5.1.1 The email account")
    assert "\n" not in rcpt["Diagnostic-Code"]


def test_original_headers_only_not_body():
    _, _, _, headers = parts(build([fail()]))
    assert "Subject: Quarterly figures" in headers
    assert "Message-ID: <abc123@example.test>" in headers
    assert "secret body" not in headers


def test_non_ascii_original_headers_survive():
    original = "Subject: Grüße aus Köln\r\nFrom: a@example.test\r\n\r\nbody".encode()
    raw = build([fail()], original_headers=original)
    assert_wire_format(raw)
    _, text, _, headers = parts(raw)
    assert "Grüße aus Köln" in headers
    assert "Grüße aus Köln" in text


def test_non_ascii_recipient_uses_utf8_address_type():
    _, _, (_, rcpt), _ = parts(build([fail("jörg@remote.test")]))
    assert rcpt["Final-Recipient"] == "utf-8; j\\x{F6}rg@remote.test"


def test_delayed_notice():
    until = ARRIVAL + timedelta(days=5)
    failure = fail(status="4.4.1", diagnostic="421 4.4.1 connection timed out",
                   action="delayed", will_retry_until=until)
    raw = build([failure], delayed=True)
    msg, text, (_, rcpt), _ = parts(raw)
    assert msg["Subject"] == SUBJECT_DELAYED
    assert rcpt["Action"] == "delayed"
    assert parsedate_to_datetime(rcpt["Will-Retry-Until"]) == until
    flat = " ".join(text.split())
    assert "no need to send it again" in flat
    assert "keeps trying" in flat


def test_human_part_lists_every_recipient_and_postmaster():
    _, text, _, _ = parts(build([fail(), fail("carol@other.test")]))
    assert "<bob@remote.test>" in text and "<carol@other.test>" in text
    assert "postmaster@example.test" in text
    assert "Quarterly figures" in text
    assert "mail.example.test" in text
    assert all(len(line) <= 78 for line in text.splitlines())


def test_null_sender_never_gets_a_dsn():
    assert should_bounce("") is False
    assert should_bounce("<>") is False
    assert should_bounce(" <> ") is False
    assert should_bounce("alice@example.test") is True
    # Only the null path is special; a named MAILER-DAEMON is an ordinary address.
    assert should_bounce("MAILER-DAEMON@example.test") is True
    with pytest.raises(ValueError):
        build([fail()], original_sender="")


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        fail(status="550")
    with pytest.raises(ValueError):
        fail(action="bounced")
    with pytest.raises(ValueError):
        build([])


# -- wording -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "diagnostic", "expected"),
    [
        ("5.1.1", "550 5.1.1 user unknown", "does not exist"),
        ("5.0.0", "550 No such user here", "has no mailbox by that name"),
        ("5.1.2", "domain remote.test does not exist", "could not be found"),
        ("5.4.4", "Host not found (NXDOMAIN)", "could not be found"),
        ("5.1.10", "556 5.1.10 null MX", "does not accept email at all"),
        ("5.2.2", "552 5.2.2 Mailbox full", "mailbox is full"),
        ("4.2.2", "452 4.2.2 Over quota", "mailbox is full"),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed limit", "bigger than"),
        ("5.2.3", "552 5.2.3 Message length exceeds administrative limit", "bigger than"),
        ("5.7.1", "554 5.7.1 Message rejected as spam", "took your message for spam"),
        ("5.7.1", "554 5.7.1 Virus found: Eicar-Test-Signature", "virus"),
        ("5.7.26", "550 5.7.26 Unauthenticated email is not accepted (DMARC)", "SPF, DKIM or DMARC"),
        ("5.7.0", "550 5.7.0 Rejected by local policy", "under its own rules"),
        ("5.7.1", "554 5.7.1 <bob@remote.test>: Relay access denied", "relaying denied"),
        ("5.0.0", "554 Transaction failed", "refused the message"),
        ("4.0.0", "451 Try again", "kept answering with a temporary error"),
    ],
)
def test_wording_per_case(status: str, diagnostic: str, expected: str):
    text = human_text(fail(status=status, diagnostic=diagnostic))
    assert expected in text
    assert "What happened:" in text and "What you can do:" in text


def test_generic_fallback_quotes_the_reply():
    reply = "554 5.0.0 Something odd happened at our end, ref 8812"
    text = human_text(fail(status="5.0.0", diagnostic=reply))
    assert reply in text
    assert "said:" in text


def test_could_not_connect_for_n_days():
    failure = fail(status="4.4.7", diagnostic="421 4.4.1 Connection timed out")
    text = human_text(failure)
    assert "could not connect to the recipient's mail server for 5 days" in text
    assert "stopped trying" in text


def test_could_not_connect_in_hours_while_delayed():
    failure = RecipientFailure("bob@remote.test", "4.4.1", "delayed", None,
                               "connection refused", ARRIVAL + timedelta(hours=4))
    text = human_text(failure, delayed=True)
    assert "for 4 hours" in text
    assert "keeps trying" in text


def test_explain_is_usable_alone():
    what, todo = explain(fail(status="5.2.2", diagnostic="552 full"))
    assert "full" in what and todo


def test_misspelt_domain_hint_in_dsn():
    failure = fail("li.wei@sian.com", "5.1.2", "domain sian.com does not exist", remote_mta=None)
    text = human_text(failure)
    assert "sian.com - did you mean sina.com?" in text
    assert "li.wei@sina.com" in text


def test_no_hint_for_a_real_looking_domain():
    failure = fail("x@example.org", "5.1.2", "domain example.org does not exist", remote_mta=None)
    assert "did you mean" not in human_text(failure)


def test_no_hint_for_user_unknown_at_a_known_provider():
    assert "did you mean" not in human_text(fail("nobody@gmail.com"))


# -- the domain hint -------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("sian.com", "sina.com"),
        ("gmial.com", "gmail.com"),
        ("hotmial.com", "hotmail.com"),
        ("gmail.con", "gmail.com"),
        ("gmai.com", "gmail.com"),
        ("GMIAL.COM", "gmail.com"),
        ("yahooo.com", "yahoo.com"),
        ("outlok.com", "outlook.com"),
        ("qq.con", "qq.com"),
        ("163.cm", "163.com"),
        ("icloud.co", "icloud.com"),
        ("protonmial.com", "protonmail.com"),
        ("yandex.ry", "yandex.ru"),
    ],
)
def test_suggest_domain(typo: str, meant: str):
    assert suggest_domain(typo) == meant


@pytest.mark.parametrize(
    "domain",
    ["example.org", "example.com", "gmail.com", "sina.com", "126.com", "163.com",
     "mail.com", "gmx.de", "aim.com", "university.edu", "", "localhost", "bücher.de"],
)
def test_no_false_suggestion(domain: str):
    assert suggest_domain(domain) is None


def test_edit_distance_counts_a_swap_as_one():
    assert edit_distance("sian", "sina") == 1
    assert edit_distance("abc", "abc") == 0
    assert edit_distance("kitten", "sitting", limit=10) == 3
    assert edit_distance("a", "abcdef", limit=3) == 3  # capped


# -- property: whatever the remote said, the output is valid ------------------------


@settings(max_examples=60, deadline=None)
@given(
    diagnostic=st.text(min_size=1, max_size=1500),
    remote=st.one_of(st.none(), st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){0,3}", fullmatch=True)),
    status=st.from_regex(r"[45]\.[0-7]\.[0-9]{1,2}", fullmatch=True),
    headers=st.binary(max_size=400),
)
def test_any_reply_gives_valid_message(diagnostic, remote, status, headers):
    raw = build([fail(status=status, diagnostic=diagnostic, remote_mta=remote)],
                original_headers=headers)
    assert_wire_format(raw)
    msg = parse(raw)
    assert len(list(msg.iter_parts())) == 3
    blocks = list(msg.iter_parts())[1].get_payload()
    assert blocks[1]["Status"] == status
    assert not msg.defects
