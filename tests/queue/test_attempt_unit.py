"""Small pure pieces of a delivery attempt."""
from coremail.queue.attempt import without_return_path


def test_relayed_copy_loses_our_return_path_only():
    raw = b"Return-Path: <a@x.test>\r\nReceived: from x\r\n\tby y\r\nSubject: s\r\n\r\nReturn-Path: body\r\n"
    assert without_return_path(raw) == b"Received: from x\r\n\tby y\r\nSubject: s\r\n\r\nReturn-Path: body\r\n"
    folded = b"Return-Path:\r\n <a@x.test>\r\nSubject: s\r\n\r\nb\r\n"
    assert without_return_path(folded) == b"Subject: s\r\n\r\nb\r\n"
    plain = b"Subject: s\r\n\r\nReturn-Path: x\r\n"
    assert without_return_path(plain) is plain
