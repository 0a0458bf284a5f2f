"""mail/reading.py: a stored message taken apart for the dev inbox."""

from __future__ import annotations

from email.message import EmailMessage

from sesame.mail import reading


def _message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "=?utf-8?q?Caf=C3=A9?= <cafe@shop.test>"
    msg["To"] = "ann@example.test"
    msg["Subject"] = "Grüße"
    msg.set_content("Bonjour, café\n")
    msg.add_alternative(
        '<html><head><title>t</title></head><body><a href="https://a.test/x">x</a>'
        '<a href="mailto:m@a.test">m</a>'
        '<img src="cid:logo@x"><img src="https://a.test/i.png" alt=""></body></html>',
        subtype="html",
    )
    msg.get_payload()[1].add_related(b"PNG", maintype="image", subtype="png", cid="<logo@x>")
    msg.add_attachment(b"data", maintype="application", subtype="x-sh", filename="../run me?.sh")
    return msg.as_bytes()


def test_read_decodes_headers_bodies_and_parts() -> None:
    got = reading.read(_message())
    assert got.subject == "Grüße" and got.from_ == "Café <cafe@shop.test>"
    assert got.text == "Bonjour, café\n"
    assert got.html is not None and got.html.startswith("<html>")
    [attachment] = got.attachments
    assert attachment.filename == "../run me?.sh" and attachment.content == b"data"
    assert attachment.download_name == "run me_.sh"
    assert attachment.download_type == "application/octet-stream"
    assert got.inline["logo@x"].content == b"PNG"


def test_framed_html_opens_links_in_a_new_tab_and_inlines_cid_images() -> None:
    framed = reading.framed(reading.read(_message()))
    assert framed.startswith('<html><head><base target="_blank"><title>')
    assert 'src="data:image/png;base64,UE5H"' in framed and "cid:" not in framed
    assert reading.framed(reading.Reading(html="<p>x</p>")) == '<base target="_blank"><p>x</p>'


def test_links_and_images_without_alt() -> None:
    report = reading.links_of(reading.read(_message()).html)
    assert report.links == ["https://a.test/x"]
    assert report.other_links == ["mailto:m@a.test"]
    assert report.images_without_alt == ["cid:logo@x"]  # alt="" is a decorative image's right answer


def test_safe_filename_and_attachment_marker() -> None:
    assert reading.safe_filename('..\\..\\"évil".exe') == "_vil_.exe"
    assert reading.safe_filename("...") == "attachment"
    assert reading.has_attachments(b"Content-Type: multipart/mixed; boundary=x\r\n")
    assert not reading.has_attachments(b"Content-Type: multipart/alternative; boundary=x\r\n")


def test_content_disposition_keeps_a_unicode_name_safely() -> None:
    assert reading.content_disposition("report.pdf") == 'attachment; filename="report.pdf"'
    assert reading.content_disposition('../Rechnung "März"\r\n.pdf') == (
        "attachment; filename=\"Rechnung _M_rz_.pdf\"; filename*=UTF-8''Rechnung%20_M%C3%A4rz_.pdf"
    )
