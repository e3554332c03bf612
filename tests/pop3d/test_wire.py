"""wire.py: normalisation, dot-stuffing, TOP and the streaming encoder agree
with each other and with what a client un-stuffs (hypothesis)."""
from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from coremail.pop3d.wire import StreamEncoder, encode, normalise, stuff, top, wire_size_of

# bytes rich in the characters that matter: CR, LF and dots at line starts
tricky = st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"a", b"\xc3\xa9", b" "]),
                  max_size=60).map(b"".join)


def unstuff(wire: bytes) -> bytes:
    """What a client does: strip one leading dot from each line."""
    lines = wire.split(b"\r\n")
    return b"\r\n".join(ln[1:] if ln.startswith(b".") else ln for ln in lines)


def test_clean_message_is_sent_as_stored():
    msg = b"Subject: x\r\n\r\nhello\r\n"
    assert encode(msg, clean=True) == msg
    assert wire_size_of(io.BytesIO(msg)) == len(msg)


def test_dot_stuffing_first_line_and_later_lines():
    assert stuff(b".a\r\nb\r\n..c\r\n.\r\n") == b"..a\r\nb\r\n...c\r\n..\r\n"


def test_bare_lf_and_missing_final_crlf_are_normalised_and_counted():
    raw = b"Subject: x\n\nline\nlast"
    assert normalise(raw) == b"Subject: x\r\n\r\nline\r\nlast\r\n"
    assert wire_size_of(io.BytesIO(raw)) == len(normalise(raw))


def test_top_header_and_lines():
    msg = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n"
    assert top(msg, 0) == b"A: 1\r\nB: 2\r\n\r\n"
    assert top(msg, 2) == b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n"
    assert top(msg, 99) == msg
    assert top(b"A: 1\r\n", 3) == b"A: 1\r\n"


@given(tricky)
def test_wire_size_is_normalised_length(raw):
    for chunk in (1, 3, 1 << 20):
        import coremail.pop3d.wire as w
        old, w.SCAN_CHUNK = w.SCAN_CHUNK, chunk
        try:
            assert wire_size_of(io.BytesIO(raw)) == len(normalise(raw))
        finally:
            w.SCAN_CHUNK = old


@given(tricky)
def test_client_gets_back_the_normalised_message(raw):
    wire = encode(raw, clean=False)
    assert b"\r\n.\r\n" not in b"\r\n" + wire  # the terminator cannot appear early
    assert unstuff(wire) == normalise(raw)


@settings(max_examples=300)
@given(tricky, st.lists(st.integers(1, 7), min_size=1, max_size=20))
def test_stream_encoder_equals_one_shot(raw, cuts):
    clean = normalise(raw) == raw
    chunks, i = [], 0
    for c in cuts * 20:
        if i >= len(raw):
            break
        chunks.append(raw[i:i + c])
        i += c
    if i < len(raw):
        chunks.append(raw[i:])
    enc = StreamEncoder(clean)
    out = b"".join(enc.feed(c) for c in chunks) + enc.finish()
    assert out == encode(raw, clean)
