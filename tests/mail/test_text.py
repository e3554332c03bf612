"""The filters' text of a message: decoded headers and parts in any charset,
HTML reduced to words, the facts the rules ask about; never a crash."""
from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings, strategies as st

from coremail.mail.text import MessageText, extract


def test_encoded_subject_gbk_base64_body_and_qp_are_decoded():
    gbk = base64.b64encode("免费发票，请联系".encode("gbk")).decode()
    raw = ("Subject: =?gb2312?B?" + base64.b64encode("发票代开".encode("gbk")).decode() + "?=\r\n"
           "From: a@b.test\r\nMIME-Version: 1.0\r\n"
           'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
           "--b\r\nContent-Type: text/plain; charset=GBK\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + gbk + "\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n"
           "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
           "<p>Caf=C3=A9 <a href=3D\"http://198.51.100.7/x\">here</a><img src=3D\"https://t.test/p.gif\">"
           "<style>.x{}</style></p>\r\n"
           "--b\r\nContent-Type: application/octet-stream\r\n"
           "Content-Disposition: attachment; filename*=utf-8''invoice%20%E2%82%AC.exe\r\n\r\nAAAA\r\n"
           "--b--\r\n").encode()
    t = extract(raw)
    assert t.subject == "发票代开" and t.header("subject") == ["发票代开"]
    assert "免费发票" in t.body and "Café here" in t.body and ".x{}" not in t.body
    assert t.links == ["http://198.51.100.7/x"] and t.remote_images == 1
    assert [p.filename for p in t.parts if p.filename] == ["invoice €.exe"]
    assert t.has_plain and t.has_html and "发票代开" in t.searchable


def test_invisible_characters_are_dropped_and_reported():
    t = extract("Subject: fr\u200bee\r\n\r\nv\u200bi\u200ba\u200bgra\r\n".encode())
    assert t.subject == "free" and t.body == "viagra" and t.hidden


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([
    b"Subject: =?utf-8?b?5L2g?=\r\n", b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Type: text/html; charset=gbk\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n", b"\r\n", b"--x\r\n", b"--x--\r\n",
    b"<a href='http://1.2.3.4/'>", b"<script>", b"=C3=A9=\r\n", b"5L2g5aW9\r\n",
    b"Content-Disposition: attachment; filename*0*=utf-8''a%E2; filename*1=b\r\n",
    b"\xff\xfe\x00", b"Content-Type: message/rfc822\r\n", b"charset=utf-7\r\n",
    b"Content-Type: text/plain; charset=\"base64\"\r\n", b"=?x-unknown?q?a=ZZ?=",
]), max_size=30), st.binary(max_size=200))
def test_extraction_never_crashes_and_always_gives_text(pieces, tail):
    t = extract(b"".join(pieces) + tail)
    assert isinstance(t, MessageText) and isinstance(t.body, str) and isinstance(t.subject, str)
    assert all(isinstance(v, str) for _, v in t.headers)
    t.body.encode("utf-8")      # storable: no lone surrogates
    t.subject.encode("utf-8")
