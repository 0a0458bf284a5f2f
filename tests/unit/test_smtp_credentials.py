"""SES SMTP passwords against the reference's test vectors (the AWS documentation's example secret)."""

from __future__ import annotations

import pytest

from sesame.smtp.credentials import (
    LEGACY_VERSION,
    VERSION,
    legacy_smtp_password,
    password_matches,
    password_version,
    smtp_password,
)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    "region, password",
    [
        ("us-east-1", "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9"),
        ("us-west-2", "BF2PynzbSCAjX08zhZZnP/kW+T9P5zs/1Er0pi5vTEmd"),
        ("eu-west-1", "BMW5RDrXmmVs0lV7GpI4oLkHXpZ4stDsk6q91z1g38Pk"),
    ],
)
def test_passwords_are_derived_as_ses_derives_them(region: str, password: str) -> None:
    assert smtp_password(SECRET, region) == password
    assert password_version(password) == VERSION
    assert password_matches(password, SECRET, region)


def test_a_password_opens_its_own_region_only() -> None:
    assert not password_matches(smtp_password(SECRET, "us-east-1"), SECRET, "eu-west-1")
    assert not password_matches(smtp_password(SECRET + "x", "us-east-1"), SECRET, "us-east-1")
    assert not password_matches("", SECRET, "us-east-1")


def test_legacy_passwords_are_recognised_not_accepted() -> None:
    legacy = legacy_smtp_password(SECRET)
    assert legacy == "An60U4ZD3sd4fg+FvXUjayOipTt8LO4rUUmhpdX6ctDy"
    assert password_version(legacy) == LEGACY_VERSION
    assert not password_matches(legacy, SECRET, "us-east-1")


@pytest.mark.parametrize("junk", ["", "not base64!", "QUJD", "B" * 40])
def test_what_no_derivation_makes_has_no_version(junk: str) -> None:
    assert password_version(junk) is None
