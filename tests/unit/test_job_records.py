"""Import sources read record by record, with the byte offset after each (where a resumed job starts),
and the MessageInsightsFilters' wildcards."""

from __future__ import annotations

import io

import pytest

from sesame.jobs.filters import Filters, pattern
from sesame.jobs.records import Record, RecordError, RecordReader


def fields(record: Record) -> list[str]:
    if record.fields and record.fields[0] == "bad":
        raise RecordError("bad record")
    return record.fields or []


def test_csv_records_with_quotes_line_breaks_blank_lines_and_a_byte_order_mark() -> None:
    data = b'\xef\xbb\xbfa,1\r\n\r\n"b, with comma","two\nlines"\nbad,3\n"never closed,4\n'
    reader = RecordReader(io.BytesIO(data), "CSV")
    batch = reader.read(10, fields)
    assert batch.rows == [["a", "1"], ["b, with comma", "two\nlines"]]
    assert batch.failures == [
        (5, "bad,3", "bad record"),
        (6, '"never closed,4', "a quoted field is not closed"),
    ]
    assert (batch.records, batch.position, batch.line, batch.done) == (4, len(data), 6, True)


def test_reading_resumes_at_a_saved_offset_with_the_header_read_again() -> None:
    data = b"emailAddress,reason\nx@a.test,BOUNCE\ny@a.test,COMPLAINT\nz@a.test,BOUNCE\n"
    first = RecordReader(io.BytesIO(data), "CSV", header=True)
    batch = first.read(1, lambda r: (r.header, r.fields))
    assert batch.rows == [(["emailAddress", "reason"], ["x@a.test", "BOUNCE"])] and batch.line == 2
    stream = io.BytesIO(data)
    stream.seek(batch.position)
    header = RecordReader(io.BytesIO(data), "CSV").first_record()
    rest = RecordReader(stream, "CSV", position=batch.position, line=batch.line, header=header or [])
    after = rest.read(10, lambda r: (r.line, r.header, r.fields))
    assert after.rows == [
        (3, ["emailAddress", "reason"], ["y@a.test", "COMPLAINT"]),
        (4, ["emailAddress", "reason"], ["z@a.test", "BOUNCE"]),
    ]


def test_json_lines() -> None:
    data = b'{"emailAddress": "a@b.test"}\n[1]\n{nope\n\n{"emailAddress": "c@d.test"}'
    batch = RecordReader(io.BytesIO(data), "JSON").read(10, lambda r: r.object)
    assert batch.rows == [{"emailAddress": "a@b.test"}, {"emailAddress": "c@d.test"}]
    assert [(line, error.split(":")[0]) for line, _, error in batch.failures] == [
        (2, "not a JSON object"),
        (3, "not valid JSON"),
    ]


@pytest.mark.parametrize(
    ("value", "yes", "no"),
    [
        ("ann@gmail.com", ["ann@gmail.com"], ["Ann@gmail.com", "xann@gmail.com"]),
        ("*@gmail.com", ["ann@gmail.com", "@gmail.com"], ["ann@gmail.co"]),
        ("ann@*", ["ann@gmail.com"], ["bob@gmail.com"]),
        ("*news*", ["Weekly news!", "news"], ["News"]),
        (r"\*news", ["*news"], ["news", "the *news"]),
        (r"*\*", ["a*"], ["a"]),
        (r"a\\*", ["a\\b"], ["ab"]),
        ("a*b", ["a*b"], ["axb"]),
    ],
)
def test_filter_wildcards(value: str, yes: list[str], no: list[str]) -> None:
    match = pattern(value)
    assert all(match(s) for s in yes) and not any(match(s) for s in no)


def test_filters_are_and_ed_and_their_values_or_ed() -> None:
    f = Filters({"Destination": ["*@gmail.com", "bob@*"], "LastDeliveryEvent": ["DELIVERY"], "Isp": []})
    assert f.matches({"Destination": "bob@yahoo.com", "LastDeliveryEvent": "DELIVERY"})
    assert not f.matches({"Destination": "bob@yahoo.com", "LastDeliveryEvent": "SEND"})
    assert not f.matches({"Destination": "cid@yahoo.com", "LastDeliveryEvent": "DELIVERY"})
    assert Filters(None).empty and Filters({"Isp": []}).empty
