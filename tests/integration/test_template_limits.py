"""Template render bombs over boto3 against a running Sesame: refused with SES's errors, or (for sends)
accepted and recorded as Rendering Failures, while the server keeps answering /health."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from sesame.testing.servers import SesameProcess
from tests.conftest import Serve, client, query

DATA = json.dumps({"a": list(range(100))})
# {{#each a}}{{#each ../a}}{{#each ../../a}}{{#each ../../../a}}: 100**4 runs of the body.
NESTED_EACH = "".join("{{#each " + "../" * n + "a}}" for n in range(4)) + "x" + "{{/each}}" * 4
# Twenty partials, each calling the one before twice: 2**20 copies of 1 KB from a 2 KB template.
DOUBLING = "\n".join(
    ['{{#*inline "p0"}}' + "x" * 1000 + "{{/inline}}"]
    + [f'{{{{#*inline "p{n}"}}}}{{{{> p{n - 1}}}}}{{{{> p{n - 1}}}}}{{{{/inline}}}}' for n in range(1, 21)]
    + ["{{> p20}}"]
)
STEPS = "The template takes more than 400000 steps to render."


@pytest.fixture(scope="module")
def sesame(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    data_dir: Path = tmp_path_factory.mktemp("template-limits")
    env = {"SESAME_TEMPLATES__MAX_RENDER_STEPS": "400000"}  # a fifth of the default: quicker tests
    with SesameProcess("dev", data_dir=data_dir, database=module_database, env=env) as proc:
        yield Serve(proc, data_dir, module_database)


def while_health_polled(sesame: Serve, call: Callable[[], Any]) -> Any:
    """Run ``call`` (a bomb) in a thread while /health is asked over and over; every answer must come
    quickly and there must have been several while the call ran."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except Exception as exc:  # handed to the test below
            result["error"] = exc

    worker = threading.Thread(target=run)
    latencies = []
    with httpx.Client(base_url=sesame.endpoint, timeout=5) as http:
        worker.start()
        while worker.is_alive():
            started = time.perf_counter()
            assert http.get("/health").json()["status"] == "ok"
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
    worker.join()
    assert latencies and max(latencies) < 1.0, latencies
    if "error" in result:
        raise result["error"]
    return result["value"]


def error(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def rendering_failure(sesame: Serve, message_id: str) -> str:
    """The errorMessage of the message's Rendering Failure (accepted, never sent)."""
    (msg,) = query(sesame, "SELECT status FROM messages WHERE id = :id", id=message_id)
    assert msg["status"] == "rendering-failure"
    (event,) = query(sesame, "SELECT event_type, detail FROM events WHERE message_id = :m", m=message_id)
    detail = json.loads(event["detail"]) if isinstance(event["detail"], str) else event["detail"]
    assert event["event_type"] == "RenderingFailure"
    return str(detail["errorMessage"])


def test_test_render_of_bombs_is_refused_and_health_stays_quick(sesame: Serve) -> None:
    v1 = client("ses", sesame.endpoint)
    v2 = client("sesv2", sesame.endpoint)
    v1.create_template(Template={"TemplateName": "each", "SubjectPart": "s", "TextPart": NESTED_EACH})
    v2.create_email_template(TemplateName="doubling", TemplateContent={"Subject": "s", "Html": DOUBLING})

    assert while_health_polled(
        sesame, lambda: error(lambda: v1.test_render_template(TemplateName="each", TemplateData=DATA))
    ) == ("InvalidTemplate", STEPS)
    assert error(lambda: v2.test_render_email_template(TemplateName="each", TemplateData=DATA)) == (
        "BadRequestException",
        STEPS,
    )
    # The doubling partials outgrow the largest message: 10 MB in v1, 40 MB in v2 (after base64).
    assert while_health_polled(
        sesame, lambda: error(lambda: v1.test_render_template(TemplateName="doubling", TemplateData="{}"))
    ) == ("InvalidTemplate", "Message length is more than 10485760 bytes long.")
    assert error(lambda: v2.test_render_email_template(TemplateName="doubling", TemplateData="{}")) == (
        "BadRequestException",
        "Message length is more than 41943040 bytes long.",
    )
    # An honest template still renders, and a big honest one too (off the event loop).
    v2.create_email_template(
        TemplateName="rows",
        TemplateContent={"Subject": "{{a.length}} rows", "Text": "{{#each a}}row {{this}}\n{{/each}}"},
    )
    out = v1.test_render_template(TemplateName="rows", TemplateData=DATA)["RenderedTemplate"]
    assert "Subject: 100 rows" in out and "row 99" in out
    big = json.dumps({"a": ["y" * 1000] * 200})  # 200 KB of data, 40 MB asked by the template below
    v2.create_email_template(
        TemplateName="wide", TemplateContent={"Subject": "s", "Text": "{{#each a}}{{../a}}{{/each}}"}
    )
    assert error(lambda: v2.test_render_email_template(TemplateName="wide", TemplateData=big))[0] == (
        "BadRequestException"
    )


def test_templated_sends_of_bombs_are_rendering_failures(sesame: Serve) -> None:
    v1 = client("ses", sesame.endpoint)
    v2 = client("sesv2", sesame.endpoint)
    v2.create_email_identity(EmailIdentity="bombs.test")  # dev mode: verified at once
    v1.create_template(Template={"TemplateName": "each-send", "SubjectPart": "s", "TextPart": NESTED_EACH})

    sent = while_health_polled(
        sesame,
        lambda: v1.send_templated_email(
            Source="me@bombs.test",
            Destination={"ToAddresses": ["a@example.org"]},
            Template="each-send",
            TemplateData=DATA,
        ),
    )
    assert rendering_failure(sesame, sent["MessageId"]) == STEPS

    sent = while_health_polled(
        sesame,
        lambda: v2.send_email(
            FromEmailAddress="me@bombs.test",
            Destination={"ToAddresses": ["a@example.org"]},
            Content={
                "Template": {"TemplateContent": {"Subject": "s", "Text": DOUBLING}, "TemplateData": "{}"}
            },
        ),
    )
    assert rendering_failure(sesame, sent["MessageId"]) == "Message length is more than 41943040 bytes long."

    results = v2.send_bulk_email(
        FromEmailAddress="me@bombs.test",
        DefaultContent={
            "Template": {"TemplateContent": {"Subject": "s", "Text": DOUBLING}, "TemplateData": "{}"}
        },
        BulkEmailEntries=[{"Destination": {"ToAddresses": [f"{n}@example.org"]}} for n in range(3)],
    )["BulkEmailEntryResults"]
    assert [r["Status"] for r in results] == ["SUCCESS"] * 3
    for r in results:
        assert rendering_failure(sesame, r["MessageId"]) == "Message length is more than 41943040 bytes long."


def test_inline_template_over_one_megabyte_is_refused(sesame: Serve) -> None:
    v2 = client("sesv2", sesame.endpoint)
    v2.create_email_identity(EmailIdentity="big.test")
    assert error(
        lambda: v2.send_email(
            FromEmailAddress="me@big.test",
            Destination={"ToAddresses": ["a@example.org"]},
            Content={
                "Template": {
                    "TemplateContent": {"Subject": "s", "Text": "x" * (1024 * 1024 + 1)},
                    "TemplateData": "{}",
                }
            },
        )
    ) == ("BadRequestException", "Template is larger than 1 MB.")
