"""The message layer: messages built from Simple content, and raw messages checked and cleaned."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sesame.mail.mime import (
    SINGLE_OCCURRENCE_HEADERS,
    UNSUPPORTED_EXTENSIONS,
    Attachment,
    DuplicateHeader,
    InvalidCharset,
    InvalidHeader,
    MalformedMessage,
    MessageError,
    MessageTooLarge,
    UnsupportedAttachment,
    add_headers,
    build_simple,
    check_attachment_filename,
    date_field,
    process_raw,
    remove_headers,
    ses_message_id_domain,
)

WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def build(**kw):
    args = dict(
        source="sender@example.com", to=["to@example.com"], subject="Hi", text="Hello", message_id="m1"
    )
    args["date"] = WHEN
    args.update(kw)
    return build_simple(**args)


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def text_of(part) -> str:
    """The decoded text of a part, with the CRLF line ends of the wire form made plain again."""
    return part.get_content().replace("\r\n", "\n")


def header_section(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


# --- attachment names --------------------------------------------------------------------------------


def test_the_unsupported_list_is_complete():
    assert len(UNSUPPORTED_EXTENSIONS) == 90
    assert {"exe", "ps1", "msh1xml", "vsmacros", "xnk", "gadget"} <= UNSUPPORTED_EXTENSIONS
    assert "Message-ID" in SINGLE_OCCURRENCE_HEADERS.values()


@pytest.mark.parametrize("name", ["x.EXE", "a.tar.vbs", "setup.Msi", "run.ps1", "trail.exe. ", "dir/evil.js"])
def test_unsupported_extensions_are_refused_in_any_case(name):
    with pytest.raises(UnsupportedAttachment) as err:
        check_attachment_filename(name)
    assert isinstance(err.value, MessageError) and name in err.value.reason


@pytest.mark.parametrize("name", ["report.pdf", "archive.zip", "noext", "exe", "photo.jpeg", ".bashrc"])
def test_other_names_pass(name):
    check_attachment_filename(name)


# --- build_simple: headers ----------------------------------------------------------------------------


def test_text_only_message_has_the_headers_ses_writes():
    data = build(
        cc=["cc@example.com"],
        bcc=["hidden@example.com"],
        reply_to=["reply@example.com"],
        return_path="b@x.com",
    )
    msg = parse(data)
    assert msg["From"] == "sender@example.com"
    assert msg["To"] == "to@example.com"
    assert msg["Cc"] == "cc@example.com"
    assert msg["Reply-To"] == "reply@example.com"
    assert msg["Subject"] == "Hi"
    assert msg["Message-ID"] == "<m1@email.amazonses.com>"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"].datetime == WHEN
    assert b"hidden" not in data and "Bcc" not in msg and "Return-Path" not in msg
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] == "7bit"
    assert text_of(msg) == "Hello\n"
    assert data.isascii() and b"\n" not in data.replace(b"\r\n", b"")


def test_message_id_domain_and_date_in_utc():
    data = build(
        message_id_domain="eu-west-1.amazonses.com",
        date=datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
    )
    msg = parse(data)
    assert msg["Message-ID"] == "<m1@eu-west-1.amazonses.com>"
    assert b"Date: Tue, 02 Jan 2024 03:04:05 +0000\r\n" in data
    assert ses_message_id_domain("us-east-1") == "email.amazonses.com"
    assert ses_message_id_domain("eu-west-1") == "eu-west-1.amazonses.com"


@pytest.mark.parametrize(
    "subject",
    [
        "Grüße aus Köln",
        "日本語の件名です" * 8,
        ("Héllo wörld " * 12).strip(),
        "tab\tand  two spaces é",
        "x" * 1200,
    ],
)
def test_subject_is_encoded_when_needed_and_decodes_back_exactly(subject):
    data = build(subject=subject)
    head = header_section(data)
    assert head.isascii()
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert all(line.strip() for line in head.split(b"\r\n"))  # no line of blanks alone
    assert parse(data)["Subject"] == subject


def test_ascii_subject_stays_as_written_and_folds_at_spaces():
    subject = " ".join(f"word{i}" for i in range(40))
    data = build(subject=subject)
    assert b"=?" not in header_section(data)
    assert parse(data)["Subject"] == subject
    pre = "=?utf-8?B?0K/QuiDRgtC4?="
    assert f"Subject: {pre}\r\n".encode() in build(subject=pre)


def test_subject_charset_is_used():
    data = build(subject="Café", subject_charset="ISO-8859-1")
    assert b"Subject: =?ISO-8859-1?B?Q2Fm6Q==?=" in data
    assert parse(data)["Subject"] == "Café"
    with pytest.raises(InvalidCharset):
        build(subject="日本", subject_charset="ISO-8859-1")


def test_line_breaks_in_a_subject_cannot_inject_headers():
    data = build(subject="Hi\r\nBcc: victim@example.com")
    msg = parse(data)
    assert "Bcc" not in msg and msg["Subject"] == "Hi\r\nBcc: victim@example.com"


@pytest.mark.parametrize(
    ("entry", "name"),
    [
        ('"Doe, John" <j@example.com>', "Doe, John"),
        ('"John \\"JJ\\" Doe" <j@example.com>', 'John "JJ" Doe'),
        ("Jöhn Dœ <j@example.com>", "Jöhn Dœ"),
        ('"Dœ, Jöhn \\"JJ\\"" <j@example.com>', 'Dœ, Jöhn "JJ"'),
        ("=?utf-8?B?0K/QuiDRgtC4?= <j@example.com>", "Як ти"),
        ("j@example.com", ""),
    ],
)
def test_display_names(entry, name):
    data = build(source=entry, to=[entry, "other@example.com"])
    assert header_section(data).isascii()
    msg = parse(data)
    for field, count in (("From", 1), ("To", 2)):
        addresses = msg[field].addresses
        assert len(addresses) == count
        assert (addresses[0].display_name, addresses[0].addr_spec) == (name, "j@example.com")


def test_encoded_display_names_are_left_as_given():
    data = build(to=["=?utf-8?B?0K/QuiDRgtC4?= <j@example.com>"])
    assert b"To: =?utf-8?B?0K/QuiDRgtC4?= <j@example.com>\r\n" in data


def test_many_recipients_fold_between_addresses():
    to = [f'"Recipient Number {i}" <r{i}@example.com>' for i in range(50)]
    msg = parse(data := build(to=to))
    assert [a.addr_spec for a in msg["To"].addresses] == [f"r{i}@example.com" for i in range(50)]
    assert all(len(line) <= 78 for line in header_section(data).split(b"\r\n"))


@pytest.mark.parametrize(
    "entry",
    ["Doe, John <j@example.com>", "nobody", "", "a@example.com\r\nBcc: x@example.com", "jöhn@example.com"],
)
def test_bad_addresses_are_refused(entry):
    with pytest.raises(InvalidHeader):
        build(to=[entry])


# --- build_simple: bodies -----------------------------------------------------------------------------


def test_html_only():
    msg = parse(build(text=None, html="<p>Hi</p>"))
    assert msg.get_content_type() == "text/html"
    assert text_of(msg) == "<p>Hi</p>\n"


def test_text_and_html_make_an_alternative():
    msg = parse(build(text="Hi", html="<p>Hi</p>"))
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    ("text", "cte"),
    [
        ("plain ascii", "7bit"),
        ("Grüße, mostly ASCII text", "quoted-printable"),
        ("日本語のテキスト", "base64"),
    ],
)
def test_body_transfer_encoding(text, cte):
    data = build(text=text)
    msg = parse(data)
    assert msg["Content-Transfer-Encoding"] == cte
    assert text_of(msg) == text + "\n"
    assert data.isascii()


def test_body_charset():
    msg = parse(build(text="Café", text_charset="ISO-8859-1", html="<b>Café</b>", html_charset="ISO-8859-1"))
    text, html = msg.iter_parts()
    assert text.get_content_charset() == "iso-8859-1" and text_of(text) == "Café\n"
    assert text_of(html) == "<b>Café</b>\n"
    with pytest.raises(InvalidCharset):
        build(text="x", text_charset="no-such-charset")


def test_attachments_go_in_a_mixed_part_after_the_alternative():
    pdf = b"%PDF-1.4\x00\xff\xfe binary"
    logo = b"GIF89a\x01\x00\x01\x00\x80"
    data = build(
        text="Hi",
        html='<img src="cid:logo@x">',
        attachments=[
            Attachment(pdf, "report.pdf", content_description="Quarterly report"),
            Attachment(logo, "logo.gif", content_disposition="INLINE", content_id="logo@x"),
        ],
    )
    msg = parse(data)
    assert msg.get_content_type() == "multipart/mixed"
    alternative, report, image = msg.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert report.get_content_type() == "application/pdf"
    assert report.get_content_disposition() == "attachment" and report.get_filename() == "report.pdf"
    assert report["Content-Description"] == "Quarterly report"
    assert report.get_content() == pdf
    assert image.get_content_type() == "image/gif"
    assert image.get_content_disposition() == "inline"
    assert image["Content-ID"] == "<logo@x>"
    assert image.get_content() == logo
    assert data.isascii() and data.count(b"MIME-Version") == 1


def test_text_only_with_attachment():
    msg = parse(build(attachments=[Attachment(b"a,b\r\n", "data.csv")]))
    body, csv = msg.iter_parts()
    assert body.get_content_type() == "text/plain"
    assert csv.get_content_type() == "text/csv" and csv["Content-Transfer-Encoding"] == "7bit"


@pytest.mark.parametrize(
    ("encoding", "content", "cte"),
    [
        ("BASE64", b"any bytes \x00\xff", "base64"),
        ("QUOTED_PRINTABLE", b"caf\xe9 line\r\nnext\n", "quoted-printable"),
        ("SEVEN_BIT", b"plain ascii\r\nlines\r\n", "7bit"),
        ("SEVEN_BIT", b"binary \x00\xff cannot be 7bit", "base64"),
        ("SEVEN_BIT", b"bare\nnewlines", "base64"),
        ("SEVEN_BIT", b"x" * 1200, "base64"),
    ],
)
def test_attachment_transfer_encodings(encoding, content, cte):
    data = build(
        attachments=[
            Attachment(content, "f.bin", "application/octet-stream", content_transfer_encoding=encoding)
        ]
    )
    part = list(parse(data).iter_parts())[1]
    assert part["Content-Transfer-Encoding"] == cte
    assert part.get_content() == content
    assert data.isascii()


def test_attachment_content_type_is_guessed_and_params_kept():
    parts = list(
        parse(
            build(
                attachments=[
                    Attachment(b"x", "a.pdf"),
                    Attachment(b"x", "a.unknownext"),
                    Attachment(b"x", "notes", "text/plain; charset=utf-8"),
                ]
            )
        ).iter_parts()
    )
    assert [p.get_content_type() for p in parts[1:]] == [
        "application/pdf",
        "application/octet-stream",
        "text/plain",
    ]
    assert parts[3].get_content_charset() == "utf-8"


def test_unicode_and_long_file_names_use_rfc_2231():
    name = "Übersicht " + "sehr lang " * 12 + "日本.pdf"
    data = build(attachments=[Attachment(b"x", name)])
    assert data.isascii()
    assert list(parse(data).iter_parts())[1].get_filename() == name


def test_attachments_with_unsupported_names_or_bad_fields_are_refused():
    with pytest.raises(UnsupportedAttachment):
        build(attachments=[Attachment(b"MZ", "setup.EXE")])
    with pytest.raises(InvalidHeader):
        build(attachments=[Attachment(b"x", "a.bin", "not a type")])
    with pytest.raises(MessageError):
        build(attachments=[Attachment(b"x", "a.bin", content_transfer_encoding="UUENCODE")])


# --- build_simple: custom headers ---------------------------------------------------------------------


def test_custom_headers_are_written_verbatim():
    value = "<https://example.com/unsub?id=1>, <mailto:unsub@example.com>"
    data = build(
        headers=[
            ("List-Unsubscribe", value),
            ("X-Custom", "1"),
            ("X-Custom", "2"),
            ("Content-Language", "en"),
        ]
    )
    head = header_section(data)
    assert f"List-Unsubscribe: {value}\r\n".encode() in data
    assert b"X-Custom: 1\r\nX-Custom: 2\r\n" in head
    assert parse(data)["Content-Language"] == "en"
    long = "v" * 980
    assert f"X-Long: {long}\r\n".encode() in build(headers=[("X-Long", long)])


@pytest.mark.parametrize(
    "headers",
    [
        [("Subject", "again")],
        [("message-id", "<x@y>")],
        [("MIME-Version", "1.0")],
        [("Content-Type", "text/plain")],
        [("To", "x@example.com")],
        [("List-Unsubscribe", "<a>"), ("list-unsubscribe", "<b>")],
    ],
)
def test_custom_headers_may_not_duplicate_single_fields(headers):
    with pytest.raises(DuplicateHeader) as err:
        build(headers=headers)
    assert err.value.reason.startswith("Duplicate header '")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Bad:Name", "v"),
        ("Bad Name", "v"),
        ("", "v"),
        ("X-A", ""),
        ("X-A", "line\r\nBcc: x"),
        ("X-A", "é"),
        ("X-A", "v" * 996),
    ],
)
def test_custom_headers_are_validated(name, value):
    with pytest.raises(InvalidHeader):
        build(headers=[(name, value)])


# --- process_raw --------------------------------------------------------------------------------------

RAW = (
    b"X-SES-CONFIGURATION-SET: ConfigSet\r\n"
    b"From: Sender <sender@example.com>\r\n"
    b"To: a@example.com, Group: b@example.com, c@example.com;\r\n"
    b"X-SES-MESSAGE-TAGS: campaign=spring, \r\n"
    b"\tsource=raw\r\n"
    b"Cc: cc@example.com\r\n"
    b"Bcc: bcc@example.com\r\n"
    b"Subject: =?utf-8?B?SMOpbGxv?=\r\n"
    b"x-ses-source-arn: arn:aws:ses:us-east-1:123456789012:identity/example.com\r\n"
    b"X-SES-FROM-ARN: arn:aws:ses:us-east-1:123456789012:identity/from.example.com\r\n"
    b"X-SES-RETURN-PATH-ARN: arn:aws:ses:us-east-1:123456789012:identity/rp.example.com\r\n"
    b"Return-Path: <bounce@example.com>\r\n"
    b"Message-ID: <orig@client>\r\n"
    b"X-SES-CONFIGURATION-SET: Second\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"X-SES-CONFIGURATION-SET: in the body stays\r\n"
    b"caf\xc3\xa9 and raw \xff\x00 bytes\r\n"
)
CLEAN = (
    b"From: Sender <sender@example.com>\r\n"
    b"To: a@example.com, Group: b@example.com, c@example.com;\r\n"
    b"Cc: cc@example.com\r\n"
    b"Bcc: bcc@example.com\r\n"
    b"Subject: =?utf-8?B?SMOpbGxv?=\r\n"
    b"Return-Path: <bounce@example.com>\r\n"
    b"Message-ID: <orig@client>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"X-SES-CONFIGURATION-SET: in the body stays\r\n"
    b"caf\xc3\xa9 and raw \xff\x00 bytes\r\n"
)


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_ses_headers_are_cut_out_byte_for_byte(newline):
    raw, clean = RAW.replace(b"\r\n", newline), CLEAN.replace(b"\r\n", newline)
    out, info = process_raw(raw, max_bytes=10_000)
    assert out == clean
    assert info.configuration_set == "ConfigSet"  # the first instance wins
    assert info.message_tags == [("campaign", "spring"), ("source", "raw")]
    assert info.source_arn == "arn:aws:ses:us-east-1:123456789012:identity/example.com"
    assert info.from_arn == "arn:aws:ses:us-east-1:123456789012:identity/from.example.com"
    assert info.return_path_arn == "arn:aws:ses:us-east-1:123456789012:identity/rp.example.com"
    assert info.from_addr == "sender@example.com"
    assert info.to == ["a@example.com", "b@example.com", "c@example.com"]
    assert (info.cc, info.bcc) == (["cc@example.com"], ["bcc@example.com"])
    assert info.subject == "Héllo"
    assert info.message_id == "<orig@client>"
    assert info.return_path == "bounce@example.com" and info.sender is None
    assert info.size == len(raw)
    assert set(info.ses_headers) == {
        "x-ses-configuration-set",
        "x-ses-message-tags",
        "x-ses-source-arn",
        "x-ses-from-arn",
        "x-ses-return-path-arn",
    }


def test_a_message_without_ses_headers_is_returned_unchanged():
    raw = b"From: a@example.com\nSubject: caf\xc3\xa9\n\n\x00\x01\xfe\xff binary\r\n\rodd\n"
    out, info = process_raw(raw, max_bytes=len(raw))
    assert out == raw
    assert info.subject == "café" and info.message_tags == [] and info.configuration_set is None


def test_too_large():
    with pytest.raises(MessageTooLarge) as err:
        process_raw(CLEAN, max_bytes=len(CLEAN) - 1)
    assert str(len(CLEAN)) in err.value.reason


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\nbody without headers\r\n",
        b"just some text\r\nwith no header section\r\n\r\nbody",
        b" continuation first: x\r\n\r\nbody",
        b"From: a@example.com\r\nSubject: no blank line, no body",
        b"From: a@example.com\r\nnot a header line\r\n\r\nbody",
    ],
)
def test_malformed(raw):
    with pytest.raises(MalformedMessage):
        process_raw(raw, max_bytes=1000)


@pytest.mark.parametrize("name", ["From", "Subject", "Date", "DKIM-Signature"])
def test_duplicate_single_fields_are_refused(name):
    raw = f"{name}: one\r\nTo: a@example.com\r\n{name.upper()}: two\r\n\r\nbody".encode()
    with pytest.raises(DuplicateHeader) as err:
        process_raw(raw, max_bytes=1000)
    assert err.value.reason == f"Duplicate header '{name}'."


def test_message_id_duplicates_differ_only_in_case():
    with pytest.raises(DuplicateHeader, match="Message-ID"):
        process_raw(b"Message-ID: <a@b>\r\nMessage-Id: <c@d>\r\n\r\n", max_bytes=1000)


def test_repeatable_fields_may_repeat():
    raw = b"Received: 1\r\nReceived: 2\r\nX-Thing: 1\r\nX-Thing: 2\r\nTo: a@x.com\r\nTo: b@x.com\r\n\r\nbody"
    out, info = process_raw(raw, max_bytes=1000)
    assert out == raw and info.to == ["a@x.com", "b@x.com"]


NESTED = b"""From: a@example.com\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary="outer"\r
\r
--outer\r
Content-Type: multipart/alternative; boundary="inner"\r
\r
--inner\r
Content-Type: text/plain\r
\r
hi\r
--inner\r
Content-Type: multipart/related; boundary="deep"\r
\r
--deep\r
Content-Type: text/html\r
\r
<p>hi</p>\r
--deep\r
%s\r
Content-Transfer-Encoding: base64\r
\r
TVo=\r
--deep--\r
--inner--\r
--outer--\r
"""


@pytest.mark.parametrize(
    "header",
    [
        b'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="tool.EXE"',
        b'Content-Type: application/octet-stream; name="script.vbs"',
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: inline; filename*=utf-8''r%C3%A9sum%C3%A9.scr",
        b'Content-Type: application/octet-stream; name="=?utf-8?B?ZXZpbC5iYXQ=?="',
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment;\r\n filename*0="long.name.";\r\n filename*1="js"',
    ],
)
def test_attachment_names_are_checked_in_nested_parts(header):
    with pytest.raises(UnsupportedAttachment):
        process_raw(NESTED % header, max_bytes=10_000)


def test_allowed_nested_attachment_passes_untouched():
    raw = (
        NESTED
        % b'Content-Type: image/png; name="logo.png"\r\nContent-Disposition: inline; filename="logo.png"'
    )
    assert process_raw(raw, max_bytes=10_000)[0] == raw


def test_single_part_attachment_message_is_checked():
    raw = (
        b"From: a@example.com\r\nContent-Type: application/x-msdownload\r\n"
        b'Content-Disposition: attachment; filename="a.com"\r\n\r\nMZ'
    )
    with pytest.raises(UnsupportedAttachment):
        process_raw(raw, max_bytes=1000)


# --- editing raw headers ------------------------------------------------------------------------------


def test_add_headers_prepends_in_the_message_line_ending():
    assert (
        add_headers(CLEAN, [("Feedback-ID", "1.us-east-1.x:AmazonSES")])
        == b"Feedback-ID: 1.us-east-1.x:AmazonSES\r\n" + CLEAN
    )
    lf = CLEAN.replace(b"\r\n", b"\n")
    signature = "v=1; a=rsa-sha256;\r\n\tb=abc"
    assert add_headers(lf, [("DKIM-Signature", signature), ("X-A", "1")]) == (
        b"DKIM-Signature: v=1; a=rsa-sha256;\n\tb=abc\nX-A: 1\n" + lf
    )
    for name, value in (("Bad Name", "x"), ("X-A", "a\r\nB: c"), ("X-A", "a\nb"), ("X-A", "é")):
        with pytest.raises(InvalidHeader):
            add_headers(CLEAN, [(name, value)])


def test_date_field_is_utc():
    assert date_field(WHEN) == "Tue, 02 Jan 2024 03:04:05 +0000"
    assert date_field(datetime(2024, 1, 1, 22, 4, 5, tzinfo=timezone(timedelta(hours=-5)))) == (
        "Tue, 02 Jan 2024 03:04:05 +0000"
    )


def test_remove_headers_takes_folded_lines_too():
    raw = b"A: 1\r\nB: 2\r\n  more\r\n\tand more\r\nC: 3\r\n\r\nB: body\r\n"
    assert remove_headers(raw, ["b"]) == b"A: 1\r\nC: 3\r\n\r\nB: body\r\n"


def test_a_built_message_passes_the_raw_checks_unchanged():
    data = build(html="<p>Hi</p>", attachments=[Attachment(b"x", "a.pdf")], headers=[("X-Custom", "1")])
    out, info = process_raw(data, max_bytes=len(data))
    assert out == data
    assert (info.from_addr, info.to, info.message_id) == (
        "sender@example.com",
        ["to@example.com"],
        "<m1@email.amazonses.com>",
    )


@pytest.mark.parametrize(
    "kw",
    [
        {"text": "hello\nworld"},
        {"text": "ends with a break\n"},
        {"text": ""},
        {"html": "<p>hi</p>"},
        {"text": "x", "subject": "Grüße aus Köln, " * 6},
        {"text": "x", "subject": "a long ascii subject " * 8},
        {"text": "x", "to": [f"person{i}@example.com" for i in range(12)], "cc": ["Zoë <z@example.com>"]},
        {"text": "x", "source": '"Doe, Jane" <jane@example.com>', "reply_to": ["r@example.com"]},
        {"text": ".leading dot\n\n\nblank lines\n"},
    ],
)
def test_the_usual_message_written_directly_is_what_the_email_package_writes(monkeypatch, kw):
    from sesame.mail import mime

    real, seen = mime._written_directly, []

    def both(fields, content, subtype):
        direct = real(fields, content, subtype)
        seen.append((direct, mime._via_email_package(fields, [(content, subtype, None)], (), ())))
        return direct

    monkeypatch.setattr(mime, "_written_directly", both)
    args = {"source": "s@example.com", "to": ["t@example.com"], "subject": "hi", **kw}
    build_simple(**args, message_id="0100-abc-000000", date=datetime(2026, 11, 30, 12, tzinfo=UTC))
    [(direct, package)] = seen  # the direct writer was taken
    assert direct == package


# --- fields written with blanks before the colon (RFC 5322 §4.5) --------------------------------------


@pytest.mark.parametrize("spelling", [b"From : ", b"FROM\t: ", b"from  :"])
def test_from_with_blanks_before_the_colon_is_still_the_from(spelling):
    raw = spelling + b"CEO <ceo@bank.test>\r\nTo: a@example.com\r\nSender : me@example.com\r\n\r\nbody"
    out, info = process_raw(raw, max_bytes=1000)
    assert out == raw  # delivered as written
    assert (info.from_field, info.sender_field) == ("CEO <ceo@bank.test>", "me@example.com")
    assert info.from_addr == "ceo@bank.test" and info.to == ["a@example.com"]


def test_a_blank_before_a_colon_does_not_end_the_header_section_for_the_checks():
    """The email package would take ``Subject :`` for the start of the body and never see the parts."""
    raw = b"From: a@example.com\r\nSubject : hi\r\n" + NESTED.split(b"\r\n", 1)[1] % (
        b'Content-Type: application/octet-stream; name="tool.exe"'
    )
    with pytest.raises(UnsupportedAttachment):
        process_raw(raw, max_bytes=10_000)


def test_from_fields_are_given_as_written():
    raw = b"From: a@example.com,\r\n =?utf-8?q?B=C3=A9?= <b@example.com>\r\n\r\nbody"
    info = process_raw(raw, max_bytes=1000)[1]
    assert info.from_field == "a@example.com, =?utf-8?q?B=C3=A9?= <b@example.com>"
    assert info.sender_field is None
