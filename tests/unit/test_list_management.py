"""X-SES-LIST-MANAGEMENT-OPTIONS as SES documents it: ``{contactListName}; topic={topicName}``."""

from __future__ import annotations

import pytest

from sesame.domain.contact_lists import InvalidContactList, ListManagement


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("readers", ListManagement("readers", None)),
        ("readers; topic=news", ListManagement("readers", "news")),
        (" readers ;topic = news ", ListManagement("readers", "news")),
        ("readers; TOPIC=news; other=x", ListManagement("readers", "news")),
        ("readers; topic=", ListManagement("readers", None)),
    ],
)
def test_header_values(value: str, expected: ListManagement) -> None:
    assert ListManagement.of_header(value) == expected


@pytest.mark.parametrize("value", ["", " ; topic=news"])
def test_a_header_without_a_list_is_refused(value: str) -> None:
    with pytest.raises(InvalidContactList):
        ListManagement.of_header(value)
