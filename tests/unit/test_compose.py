"""What SES does to a raw message's header section (compose.raw): Bcc gone, its own Message-ID and Date."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from sesame.domain import compose
from sesame.storage.models import utcnow

RAW = (
    b"Date: Mon, 1 Jan 2001 00:00:00 -0500\r\n"
    b"From: Me <me@example.com>\r\n"
    b"To: you@example.net\r\n"
    b"Bcc: hidden@example.org\r\n"
    b"Message-ID: <mine@client.example>\r\n"
    b"Subject: hello\r\n"
    b"\r\n"
    b"body\r\n"
)


def raw(data: bytes, **kw: object) -> compose.Outgoing:
    args: dict[str, object] = {
        "source": None, "destinations": None, "from_arn": None, "source_arn": None, "return_path_arn": None,
        "configuration_set": None, "tags": {}, "limit": 10_000,
    }  # fmt: skip
    return compose.raw("SendRawEmail", "us-east-1", data, **{**args, **kw})  # type: ignore[arg-type]


def test_message_id_and_date_are_ses_own_and_bcc_is_removed() -> None:
    before = utcnow().replace(microsecond=0)
    out = raw(RAW)
    head, _, body = out.body.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[1] == f"Message-ID: <{out.message_id}@email.amazonses.com>".encode()
    assert lines[0].startswith(b"Date: ") and parsedate_to_datetime(lines[0][6:].decode()) >= before
    assert lines[2:] == [b"From: Me <me@example.com>", b"To: you@example.net", b"Subject: hello"]
    assert body == b"body\r\n"
    assert out.recipients == ["you@example.net", "hidden@example.org"]  # Bcc still receives it


def test_a_message_without_them_gets_them_in_its_own_line_ending() -> None:
    out = raw(b"From: me@example.com\nTo: you@example.net\n\nbody\n")
    date, message_id, rest = out.body.split(b"\n", 2)
    assert date.startswith(b"Date: ") and b"\r" not in date
    assert message_id == f"Message-ID: <{out.message_id}@email.amazonses.com>".encode()
    assert rest == b"From: me@example.com\nTo: you@example.net\n\nbody\n"
