"""Open and click tracking in the HTML: where the pixel goes, which links are rewritten, and a message's
other parts left as they were."""

from __future__ import annotations

import base64
import email
import email.policy
import html as html_module
import re
import time
from datetime import UTC, datetime

from sesame.mail.mime import build_simple
from sesame.mail.tracking import (
    Rewriter,
    format_tags,
    parse_tags,
    rewrite_html,
    rewrite_message,
)

PIXEL_URL = "https://t.test/I0/m1/sig"
PIXEL = f'<img alt="" src="{PIXEL_URL}" style="display:none;width:1px;height:1px">'


def redirect(link: str, tags: str) -> str:
    """A stand-in for the signed redirect URL, showing what it was given."""
    return f"https://t.test/L0/{len(link)}?to={link}&tags={tags}"


BOTH = Rewriter(pixel=PIXEL_URL, click=redirect)
OPENS = Rewriter(pixel=PIXEL_URL, click=None)
CLICKS = Rewriter(pixel=None, click=redirect)


def hrefs(text: str) -> list[str]:
    return [html_module.unescape(h) for h in re.findall(r'href="([^"]*)"', text, re.IGNORECASE)]


def test_the_pixel_goes_at_the_bottom_of_the_body() -> None:
    text = "<html><body><p>Hi</p></body></html>"
    assert rewrite_html(text, OPENS) == f"<html><body><p>Hi</p>{PIXEL}</body></html>"
    # No </body>: before </html>; neither: at the very end.
    assert rewrite_html("<html><p>Hi</p></HTML>", OPENS) == f"<html><p>Hi</p>{PIXEL}</HTML>"
    assert rewrite_html("<p>Hi</p>", OPENS) == f"<p>Hi</p>{PIXEL}"
    assert rewrite_html("</body><p>after</p></html>", OPENS) == f"{PIXEL}</body><p>after</p></html>"
    # The last </body> counts: an earlier one may sit in a comment or a quoted message.
    nested = "<body><!-- </body> --><p>x</p></body >"
    assert rewrite_html(nested, OPENS) == f"<body><!-- </body> --><p>x</p>{PIXEL}</body >"


def test_the_first_open_tracker_placeholder_places_the_pixel_and_the_others_go() -> None:
    text = "<p>{{ses:openTracker}}a</p><p>{{ses:openTracker}}b{{ses:openTracker}}</p></body>"
    assert rewrite_html(text, OPENS) == f"<p>{PIXEL}a</p><p>b</p></body>"
    # Without open tracking the placeholders still never reach the reader.
    assert rewrite_html(text, CLICKS) == "<p>a</p><p>b</p></body>"


def test_every_http_and_https_link_is_rewritten_and_others_are_not() -> None:
    text = (
        '<a href="https://example.com/a">a</a> <a href="http://example.com/b?x=1#f">b</a>'
        ' <a href="mailto:someone@example.com">m</a> <a href="tel:+123">t</a> <a href="#top">top</a>'
        ' <a href="/relative">r</a> <a href="javascript:void(0)">j</a> <a href="ftp://example.com/">f</a>'
        ' <a name="anchor">no href</a> <a href="https://">no host</a>'
    )
    out = rewrite_html(text, CLICKS)
    assert hrefs(out) == [
        redirect("https://example.com/a", ""),
        redirect("http://example.com/b?x=1#f", ""),
        "mailto:someone@example.com",
        "tel:+123",
        "#top",
        "/relative",
        "javascript:void(0)",
        "ftp://example.com/",
        "https://",
    ]
    assert '<a name="anchor">no href</a>' in out


def test_no_track_links_stay_and_lose_the_attribute() -> None:
    text = (
        '<a ses:no-track href="https://example.com/keep" class="c">k</a><a href="https://example.com/t">t</a>'
    )
    out = rewrite_html(text, CLICKS)
    assert out.startswith('<a href="https://example.com/keep" class="c">k</a>')
    assert hrefs(out)[1] == redirect("https://example.com/t", "")
    assert "ses:" not in out
    # Attribute names are case-insensitive, and an attribute may come after the href.
    out = rewrite_html('<A HREF="https://example.com/k" SES:NO-TRACK>k</A>', CLICKS)
    assert out == '<A HREF="https://example.com/k">k</A>'


def test_link_tags_are_stripped_and_handed_to_the_redirect() -> None:
    text = '<a href="https://example.com/book" ses:tags="product:book;genre:fiction;">b</a>'
    out = rewrite_html(text, CLICKS)
    assert "ses:tags" not in out
    assert hrefs(out) == [redirect("https://example.com/book", "product:book;genre:fiction;")]
    assert parse_tags("product:book;genre:fiction;") == {"product": ["book"], "genre": ["fiction"]}
    # Repeated names gather their values; malformed pairs are dropped; the canonical form round-trips.
    tags = parse_tags(" a:1; a:2 ;bad;x:y z;no:;:no;ok_-:v-_;")
    assert tags == {"a": ["1", "2"], "ok_-": ["v-_"]}
    assert parse_tags(format_tags(tags)) == tags
    # Tags on a no-track link are stripped too, and go nowhere.
    out = rewrite_html('<a ses:tags="a:b;" href="https://example.com/" ses:no-track>x</a>', CLICKS)
    assert out == '<a href="https://example.com/">x</a>'


MAX_LINKS = 250  # SES's limit [DG: faqs-metrics]


def test_at_most_250_links_are_tracked_the_rest_stay_as_written() -> None:
    links = [f"https://example.com/{i}" for i in range(MAX_LINKS + 10)]
    text = "".join(f'<a href="{link}" ses:tags="n:{i};">{i}</a>' for i, link in enumerate(links))
    got = hrefs(rewrite_html(text, CLICKS))
    assert got[:MAX_LINKS] == [redirect(link, f"n:{i};") for i, link in enumerate(links[:MAX_LINKS])]
    assert got[MAX_LINKS:] == links[MAX_LINKS:]
    assert "ses:tags" not in rewrite_html(text, CLICKS)  # stripped beyond the limit as well
    # Links left alone do not count toward the limit.
    untracked = '<a href="mailto:a@example.com">m</a><a ses:no-track href="https://example.com/n">n</a>'
    got = hrefs(rewrite_html(untracked * 200 + text, CLICKS))
    assert got[400 + MAX_LINKS - 1] == redirect(links[MAX_LINKS - 1], f"n:{MAX_LINKS - 1};")


def test_entities_in_hrefs_are_decoded_for_the_link_and_written_escaped() -> None:
    text = '<a href="https://example.com/?a=1&amp;b=2&#38;c=3">x</a>'
    out = rewrite_html(text, CLICKS)
    (got,) = hrefs(out)
    assert got == redirect("https://example.com/?a=1&b=2&c=3", "")
    assert "&b=" not in out and "&amp;b=2" in out  # the new href is escaped HTML again
    # Blanks around a URL are not part of it (browsers strip them).
    assert hrefs(rewrite_html('<a href="  https://example.com/x\n">x</a>', CLICKS)) == [
        redirect("https://example.com/x", "")
    ]


def test_links_that_are_not_rfc3986_encoded_are_not_tracked() -> None:
    text = '<a href="https://example.com/a b">s</a><a href="https://example.com/café">c</a>'
    assert rewrite_html(text, CLICKS) == text


def test_quoting_styles_and_other_attributes_are_kept() -> None:
    text = (
        "<a class='button' href='https://example.com/q' data-x=\"a>b\">q</a>"
        "<a href=https://example.com/u?x=1 target=_blank>u</a>"
    )
    out = rewrite_html(text, CLICKS)
    assert out.startswith("<a class='button' href=\"")
    assert 'data-x="a>b">q</a>' in out
    assert " target=_blank>u</a>" in out
    assert hrefs(out) == [redirect("https://example.com/q", ""), redirect("https://example.com/u?x=1", "")]


def test_nothing_to_do_leaves_the_text_as_it_is() -> None:
    text = "<p>no links, no pixel</p>"
    assert rewrite_html(text, Rewriter(pixel=None, click=None)) == text
    assert rewrite_html('<a href="https://example.com/">x</a>', OPENS).count("https://example.com/") == 1


# --- whole messages ----------------------------------------------------------------------------------

WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
HTML = '<html><body><p>Hello</p><a href="https://example.com/x">x</a></body></html>'
TEXT = "Hello https://example.com/x {{ses:openTracker}}"


def built(**kw: object) -> bytes:
    args: dict[str, object] = dict(
        source="sender@example.com", to=["to@example.com"], subject="Hi", message_id="m1", date=WHEN
    )
    return build_simple(**{**args, **kw})  # type: ignore[arg-type]


def parts(data: bytes) -> dict[str, str]:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    return {
        part.get_content_type(): part.get_content()
        for part in msg.walk()
        if not part.is_multipart() and part.get_content_disposition() != "attachment"
    }


def test_only_the_html_part_changes_in_a_built_message() -> None:
    data = built(text=TEXT, html=HTML)
    out = rewrite_message(data, BOTH)
    got = parts(out)
    assert got["text/plain"].rstrip("\r\n") == TEXT  # text parts are never tracked
    assert PIXEL in got["text/html"]
    assert hrefs(got["text/html"]) == [redirect("https://example.com/x", "")]
    # Everything before the HTML part is byte for byte the same.
    cut = data.index(b"Content-Type: text/html")
    assert out[:cut] == data[:cut]


def test_a_message_with_no_html_is_returned_as_it_is() -> None:
    data = built(text=TEXT)
    assert rewrite_message(data, BOTH) is data


def test_a_long_7bit_line_goes_quoted_printable() -> None:
    links = "".join(f'<a href="https://example.com/{i}">{i}</a>' for i in range(20))
    data = built(html=links)  # one line of about 700 characters: 7bit as built
    assert b"Content-Transfer-Encoding: 7bit" in data
    out = rewrite_message(data, CLICKS)
    assert b"Content-Transfer-Encoding: quoted-printable" in out
    assert b"Content-Transfer-Encoding: 7bit" not in out
    assert max(len(line) for line in out.split(b"\r\n")) <= 76
    assert hrefs(parts(out)["text/html"]) == [redirect(f"https://example.com/{i}", "") for i in range(20)]


def test_base64_and_quoted_printable_parts_keep_their_encoding() -> None:
    html = "<p>Grüße, ça va? " + "x" * 300 + '</p><a href="https://example.com/é-free">x</a></body>'
    data = built(text="plain", html=html)  # non-ASCII HTML: quoted-printable as built
    assert b"quoted-printable" in data
    out = rewrite_message(data, BOTH)
    assert out.count(b"quoted-printable") == data.count(b"quoted-printable")
    assert parts(out)["text/html"].startswith("<p>Grüße, ça va? ")
    assert PIXEL in parts(out)["text/html"]

    body = base64.encodebytes("<p>Привет</p></body>".encode("koi8-r")).replace(b"\n", b"\r\n")
    raw = (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/html; charset="koi8-r"\r\nContent-Transfer-Encoding: base64\r\n\r\n' + body
    )
    out = rewrite_message(raw, OPENS)
    assert b"Content-Transfer-Encoding: base64" in out
    assert parts(out)["text/html"] == f"<p>Привет</p>{PIXEL}</body>"


def test_8bit_html_stays_8bit_with_lf_line_ends() -> None:
    raw = (
        b"From: a@example.com\nTo: b@example.com\nSubject: s\nMIME-Version: 1.0\n"
        b"Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        + '<p>Grüße</p>\n<a href="https://example.com/">x</a>\n'.encode()
    )
    out = rewrite_message(raw, CLICKS)
    assert b"Content-Transfer-Encoding: 8bit\n\n<p>Gr\xc3\xbc\xc3\x9fe</p>\n<a href=" in out
    assert hrefs(out.decode()) == [redirect("https://example.com/", "")]


def test_nested_parts_attachments_and_forwarded_messages() -> None:
    forwarded = (
        b"From: c@example.com\r\nSubject: fwd\r\nContent-Type: text/html\r\n\r\n"
        b'<a href="https://example.com/theirs">t</a>\r\n'
    )
    raw = (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
        b"preamble\r\n--outer\r\n"
        b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'
        b"--inner\r\nContent-Type: text/plain\r\n\r\nsee https://example.com/mine\r\n"
        b"--inner\r\nContent-Type: text/html\r\n\r\n"
        b'<a href="https://example.com/mine">m</a></body>\r\n'
        b"--inner--\r\n"
        b"--outer\r\nContent-Type: text/html\r\nContent-Disposition: attachment; filename=page.html\r\n\r\n"
        b'<a href="https://example.com/attached">a</a>\r\n'
        b"--outer\r\nContent-Type: message/rfc822\r\n\r\n" + forwarded + b"--outer--\r\nepilogue\r\n"
    )
    out = rewrite_message(raw, BOTH)
    mine = html_module.escape(redirect("https://example.com/mine", ""))
    inner_html = f'<a href="{mine}">m</a>{PIXEL}</body>'
    assert out == raw.replace(b'<a href="https://example.com/mine">m</a></body>', inner_html.encode())


def test_the_link_limit_is_the_whole_messages() -> None:
    links = "".join(f'<a href="https://example.com/{i}">{i}</a>\r\n' for i in range(200)).encode()
    part = b"--b\r\nContent-Type: text/html\r\n\r\n" + links
    raw = (
        b'From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + part
        + part
        + b"--b--\r\n"
    )
    msg = email.message_from_bytes(rewrite_message(raw, CLICKS), policy=email.policy.default)
    got = [hrefs(p.get_content()) for p in msg.walk() if p.get_content_type() == "text/html"]
    assert [sum(h.startswith("https://t.test/") for h in part_hrefs) for part_hrefs in got] == [200, 50]


def test_a_part_without_headers_is_plain_text() -> None:
    raw = (
        b"From: a@example.com\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b'--b\r\n\r\n<a href="https://example.com/">x</a>\r\n--b--\r\n'
    )
    assert rewrite_message(raw, BOTH) is raw


def test_hostile_html_costs_linear_time() -> None:
    """Unclosed quotes and tags make a whole-tag regular expression retry from every "<a": quadratic."""
    for text in ('<a "' * 50_000, "<a href=x " * 50_000, '<a href="https://' + "a" * 200_000 + ' ">'):
        started = time.perf_counter()
        rewrite_html(text, BOTH)
        assert time.perf_counter() - started < 2.0


def test_unreadable_parts_are_left_alone() -> None:
    bad_base64 = (
        b"From: a@example.com\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nA===\r\n"
    )
    assert rewrite_message(bad_base64, BOTH) is bad_base64
    nested = b"From: a@example.com\r\nMIME-Version: 1.0\r\n"
    for i in range(200):  # deeper than any real message: not followed, and no RecursionError
        nested += f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode()
    nested += b'Content-Type: text/html\r\n\r\n<a href="https://example.com/">x</a>\r\n'
    assert rewrite_message(nested, BOTH) is nested
