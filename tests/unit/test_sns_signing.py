"""Sesame's SNS signing key: made once in the data dir, shared by every process that uses it."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sesame.integrations.sns.signing import KEY_FILE, Signer, string_to_sign


def test_the_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    with ThreadPoolExecutor(4) as pool:  # several starting at once agree on one pair
        certs = set(pool.map(lambda _: Signer(tmp_path).cert_pem, range(4)))
    assert len(certs) == 1
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert Signer(tmp_path).cert_name == Signer(tmp_path).cert_name
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]  # no staging files left behind


def test_string_to_sign_names_each_field_present_in_order() -> None:
    note = {"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "a\nb", "Timestamp": "ts"}
    assert (
        string_to_sign(note)
        == b"Message\na\nb\nMessageId\nm\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
    )
    assert b"Subject\ns\n" in string_to_sign({**note, "Subject": "s"})
    confirm = {**note, "Type": "SubscriptionConfirmation", "Token": "k", "SubscribeURL": "u", "Subject": "x"}
    assert string_to_sign(confirm) == (
        b"Message\na\nb\nMessageId\nm\nSubscribeURL\nu\nTimestamp\nts\nToken\nk\nTopicArn\nt\n"
        b"Type\nSubscriptionConfirmation\n"
    )
