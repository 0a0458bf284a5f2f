"""Running renderings within their limits (domain/templates.py): where they run, and what a templated
send records when one fails."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sesame.config import TemplateSettings
from sesame.domain.templates import Content, Rendered, Templates
from sesame.mail import handlebars as hb
from sesame.storage.db import Database

V1_MAX_BYTES = 10 * 1024 * 1024
EACH = "{{#each a}}{{#each ../a}}{{#each ../../a}}x{{/each}}{{/each}}{{/each}}"  # 100**3 bodies
DATA: dict[str, Any] = {"a": list(range(100))}


@pytest.fixture
def templates(tmp_path: Path) -> Templates:
    # The database is never touched: rendering needs none.
    return Templates(Database(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"), TemplateSettings())


def thread_of(templates: Templates, content: Content, data: dict[str, Any]) -> str:
    def work(budget: hb.Budget) -> str:
        hb.render_parts(content.subject or "", content.html, content.text, data, budget)
        return threading.current_thread().name

    return asyncio.run(templates.run(work, content, V1_MAX_BYTES))


def send(
    templates: Templates, content: Content, data: dict[str, Any], deadline: float | None = None
) -> Rendered:
    return asyncio.run(templates.render_for_send(content, data, V1_MAX_BYTES, deadline))


def test_small_renderings_stay_on_the_event_loop(templates: Templates) -> None:
    small = Content("Hi {{name}}", text="Dear {{name}}", html=None)
    assert thread_of(templates, small, {"name": "Ann"}) == "MainThread"
    rows = Content("s", text=None, html="{{#each a}}<tr><td>{{this}}</td></tr>{{/each}}")
    assert thread_of(templates, rows, DATA) == "MainThread"


def test_big_renderings_and_big_templates_move_to_a_render_thread(templates: Templates) -> None:
    two_loops = "{{#each a}}{{#each ../a}}<td>{{this}}</td>{{/each}}{{/each}}"  # 10,000 bodies: fine
    assert thread_of(templates, Content("s", text=None, html=two_loops), DATA).startswith("sesame-render")
    big_text = Content("s", text=None, html="<p>" + "text " * 20_000 + "</p>")  # parsing 100 KB
    assert thread_of(templates, big_text, {}).startswith("sesame-render")


def test_send_records_an_overrun_as_a_rendering_failure(templates: Templates) -> None:
    templates.settings.max_render_steps = 50_000
    assert send(templates, Content("s", text=EACH, html=None), DATA) == Rendered(
        "s", html=None, text=EACH, failure="The template takes more than 50000 steps to render."
    )
    doubling = '{{#*inline "p"}}' + "x" * 1000 + "{{/inline}}\n" + "{{> p}}" * 8000  # 8 MB of output
    rendered = send(templates, Content("s", text=None, html=doubling), {})
    assert rendered.failure == "Message length is more than 10485760 bytes long."
    assert rendered.html == doubling  # what is stored for the record: the template as written


def test_send_records_missing_attributes_and_unrenderable_templates(templates: Templates) -> None:
    assert send(templates, Content("Hi {{name}}", text="{{a}}/{{b}}", html=None), {"a": 1}) == Rendered(
        "Hi ", html=None, text="1/", failure="Attribute 'name' is not present in the rendering data."
    )
    loop = '{{#*inline "p"}}x{{> p}}{{/inline}}{{> p}}'
    rendered = send(templates, Content("s", text=None, html=loop), {})
    assert rendered.failure is not None and "nested more than" in rendered.failure


def test_the_deadline_is_shared_by_a_request(templates: Templates) -> None:
    # A bulk send gives all its renderings one deadline; once it has passed, big ones fail at once.
    past = time.monotonic() - 1
    started = time.perf_counter()
    rendered = send(templates, Content("s", text=EACH, html=None), DATA, past)
    assert rendered.failure == "The template takes more than 5 s to render."
    assert time.perf_counter() - started < 0.5
    small = send(templates, Content("Hi {{n}}", text="t", html=None), {"n": 1}, past)
    assert small == Rendered("Hi 1", html=None, text="t")  # small ones never wait for a thread, nor fail
