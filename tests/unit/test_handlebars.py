"""SES template rendering: the Handlebars subset, where SES differs from Handlebars, missing attributes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from sesame.mail import handlebars
from sesame.mail.handlebars import (
    Budget,
    InvalidTemplate,
    InvalidTemplateData,
    MissingAttribute,
    RenderLimitExceeded,
    TemplateError,
    check_template,
    parse_template_data,
    render,
    render_parts,
)

# ------------------------------------------------------------------------------------------------ variables


@pytest.mark.parametrize(
    ("template", "data", "expected"),
    [
        ("Hi {{name}}!", {"name": "Ann"}, "Hi Ann!"),
        ("{{ name }}|{{name  }}", {"name": "Ann"}, "Ann|Ann"),
        ("{{contact.firstName}}", {"contact": {"firstName": "Anaya"}}, "Anaya"),
        ("{{a.b.c.d}}", {"a": {"b": {"c": {"d": "deep"}}}}, "deep"),
        ("{{a/b}}", {"a": {"b": "slash"}}, "slash"),
        ("{{list.[1]}} {{list.length}}", {"list": ["x", "y"]}, "y 2"),
        ("{{[first name]}}", {"first name": "spaced"}, "spaced"),
        ("{{this.name}}", {"name": "explicit"}, "explicit"),
        (
            "{{n}} {{f}} {{whole}} {{yes}} {{no}} {{zero}}",
            {"n": 3, "f": 1.5, "whole": 2.0, "yes": True, "no": False, "zero": 0},
            "3 1.5 2 true false 0",
        ),  # fmt: skip
        ("[{{nothing}}]", {"nothing": None}, "[]"),
        ("{{list}} {{obj}}", {"list": [1, "a", None], "obj": {"k": 1}}, "1,a, [object Object]"),
        ("{{a.b}}", {"a": "text"}, ""),
        ("Grüße {{name}} ✓ {{city}}", {"name": "Zoë", "city": "東京"}, "Grüße Zoë ✓ 東京"),
        ("{{\U0001f600}}", {"\U0001f600": "emoji key"}, "emoji key"),
    ],
)
def test_variables(template: str, data: dict[str, Any], expected: str) -> None:
    assert render(template, data) == expected


def test_no_html_escaping() -> None:
    # SES inserts values as they are, unlike stock Handlebars' {{x}}.
    value = "<b>Tom & \"Jerry\"</b> 'n' `x` ="
    assert render("<p>{{v}}</p>", {"v": value}) == f"<p>{value}</p>"
    assert render("{{{v}}}{{&v}}", {"v": "<i>"}) == "<i><i>"


def test_escaped_mustache_is_literal() -> None:
    assert render("\\{{name}} {{name}}", {"name": "Ann"}) == "{{name}} Ann"


def test_ses_placeholders_pass_through() -> None:
    template = "<p>{{ses:openTracker}}</p><a href='{{ amazonSESUnsubscribeUrl }}'>x</a>"
    assert render(template, {}) == "<p>{{ses:openTracker}}</p><a href='{{amazonSESUnsubscribeUrl}}'>x</a>"


# ------------------------------------------------------------------------------------------------ blocks


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, True),
        ("x", True),
        (1, True),
        ({}, True),
        ([0], True),
        (False, False),
        (None, False),
        ("", False),
        (0, False),
        ([], False),
    ],  # fmt: skip
)
def test_if_truthiness(value: Any, shown: bool) -> None:
    assert render("{{#if v}}yes{{else}}no{{/if}}", {"v": value}) == ("yes" if shown else "no")
    assert render("{{#unless v}}no{{else}}yes{{/unless}}", {"v": value}) == ("yes" if shown else "no")


def test_if_missing_takes_else_and_include_zero() -> None:
    assert render("{{#if absent}}yes{{else}}no{{/if}}", {}) == "no"
    assert render("{{#if n includeZero=true}}zero counts{{/if}}", {"n": 0}) == "zero counts"


def test_else_if_chain() -> None:
    template = "{{#if a}}A{{else if b}}B{{else unless c}}not C{{else}}other{{/if}}"
    assert render(template, {"a": 1}) == "A"
    assert render(template, {"b": 1}) == "B"
    assert render(template, {}) == "not C"
    assert render(template, {"c": 1}) == "other"


def test_each_scalars_with_data_variables() -> None:
    template = (
        "{{#each items}}{{@index}}:{{this}}{{#if @first}}(first){{/if}}{{#if @last}}(last){{/if}} {{/each}}"
    )
    assert render(template, {"items": ["a", "b", "c"]}) == "0:a(first) 1:b 2:c(last) "


def test_each_objects_with_this_and_bare_fields() -> None:
    data = {"people": [{"name": "Ann", "age": 31}, {"name": "Bob", "age": 42}]}
    assert render("{{#each people}}{{name}}={{this.age}};{{/each}}", data) == "Ann=31;Bob=42;"


def test_each_over_object_gives_keys() -> None:
    assert render("{{#each o}}{{@key}}={{this}}&{{/each}}", {"o": {"a": 1, "b": 2}}) == "a=1&b=2&"


def test_each_else_for_empty_or_missing() -> None:
    template = "{{#each items}}x{{else}}none{{/each}}"
    assert render(template, {"items": []}) == "none"
    assert render(template, {}) == "none"


def test_nested_each_with_index_and_parent_access() -> None:
    data = {
        "sep": "/",
        "groups": [{"name": "g0", "items": ["a", "b"]}, {"name": "g1", "items": ["c"]}],
    }
    template = (
        "{{#each groups}}{{@index}}.{{name}}[{{#each items}}{{@../index}}{{@index}}{{this}}{{../name}}"
        "{{../../sep}}{{/each}}]{{/each}}"
    )
    assert render(template, data) == "0.g0[00ag0/01bg0/]1.g1[10cg1/]"


def test_with_and_parent_scope() -> None:
    data = {"c": {"first": "Ann", "last": "Lee"}, "greeting": "Hi"}
    assert render("{{#with c}}{{../greeting}} {{first}} {{last}}{{/with}}", data) == "Hi Ann Lee"
    assert render("{{#with missing}}x{{else}}no contact{{/with}}", data) == "no contact"


def test_sections_and_lookup() -> None:
    data = {"c": {"x": "X"}, "flags": ["a", "b"], "on": True, "key": "x", "list": ["p", "q"]}
    assert render(
        "{{#c}}{{x}}{{/c}}{{#flags}}[{{this}}]{{/flags}}{{#on}}!{{/on}}{{^none}}empty{{/none}}", data
    ) == ("X[a][b]!empty")
    assert (
        render("{{lookup c key}} {{lookup list 1}} {{#with (lookup c 'x')}}{{this}}{{/with}}", data)
        == "X q X"
    )


def test_comments_render_nothing() -> None:
    assert render("a{{! short }}b{{!-- has }} inside --}}c", {}) == "abc"


# ------------------------------------------------------------------------------------------------ whitespace


def test_standalone_block_lines_disappear() -> None:
    template = "<ul>\n  {{#each items}}\n  <li>{{this}}</li>\n  {{/each}}\n</ul>\n{{! note }}\nend"
    assert render(template, {"items": [1, 2]}) == "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>\nend"


def test_standalone_lines_with_crlf() -> None:
    assert render("a\r\n{{#if x}}\r\nb\r\n{{/if}}\r\nc", {"x": 1}) == "a\r\nb\r\nc"


def test_tilde_strips_whitespace() -> None:
    assert render("a  {{~name~}}  b\n{{#if name~}}\n  c  {{~/if}}\nd", {"name": "N"}) == "aNb\nc\nd"
    assert render("a  {{~name~}}  b\n{{~#if name~}}\n  c\n{{~/if}}", {"name": "N"}) == "aNbc"


# ------------------------------------------------------------------------------------------------ partials


def test_inline_partial_as_spelled_in_the_ses_guide() -> None:
    # "{{#* inline" with a space; the newline after the definition is not rendered.
    template = (
        '{{#* inline "fullName"}}{{firstName}}{{#if lastName}} {{lastName}}{{/if}}{{/inline}}\n'
        "Hi {{> fullName}}!"
    )
    assert render(template, {"firstName": "Ann", "lastName": "Lee"}) == "Hi Ann Lee!"
    assert render(template, {"firstName": "Ann"}) == "Hi Ann!"


def test_inline_partial_inside_each_uses_the_item() -> None:
    template = '{{#*inline "p"}}<{{name}}>{{/inline}}{{#each people}}{{> p}}{{/each}}'
    assert render(template, {"people": [{"name": "a"}, {"name": "b"}]}) == "<a><b>"


def test_partial_with_context_and_standalone_indent() -> None:
    template = '{{#*inline "row"}}\n{{k}}\n{{k}}\n{{/inline}}\n  {{> row item}}\nend'
    assert render(template, {"item": {"k": "v"}}) == "  v\n  v\nend"


def test_partial_may_be_used_before_its_definition() -> None:
    assert render('{{> p}}{{#*inline "p"}}P{{/inline}}', {}) == "P"


def test_partial_scoped_to_its_block() -> None:
    template = '{{#if x}}{{#*inline "p"}}in{{/inline}}{{> p}}{{/if}}'
    assert render(template, {"x": True}) == "in"
    with pytest.raises(InvalidTemplate, match="The partial 'p' is not defined at line 1, column 53"):
        check_template(template + "{{> p}}")


def test_recursive_partial_is_stopped() -> None:
    with pytest.raises(InvalidTemplate, match="nested more than"):
        render('{{#*inline "p"}}x{{> p}}{{/inline}}{{> p}}', {})
    deep = '{{#*inline "p"}}' + "{{#if a}}" * 60 + "{{> p}}" + "{{/if}}" * 60 + "{{/inline}}{{> p}}"
    with pytest.raises(InvalidTemplate, match="too deeply"):
        render(deep, {"a": 1})


# ------------------------------------------------------------------------------------------------ budget


def nested_each(depth: int, body: str = "x") -> str:
    """{{#each a}}{{#each ../a}}{{#each ../../a}}...: each level walks the whole list again."""
    opening = "".join("{{#each " + "../" * level + "a}}" for level in range(depth))
    return opening + body + "{{/each}}" * depth


def doubling_partials(levels: int) -> str:
    """Partial n calls partial n-1 twice: 2**levels copies of "ab" from a template of under 1 KB."""
    lines = ['{{#*inline "p0"}}ab{{/inline}}']
    lines += [
        f'{{{{#*inline "p{n}"}}}}{{{{> p{n - 1}}}}}{{{{> p{n - 1}}}}}{{{{/inline}}}}'
        for n in range(1, levels + 1)
    ]
    return "\n".join(lines) + f"\n{{{{> p{levels}}}}}"


def test_nested_each_bomb_runs_out_of_steps_early() -> None:
    data = {"a": list(range(100))}
    assert len(render(nested_each(2), data)) == 100**2  # an honest double loop renders
    started = time.perf_counter()
    with pytest.raises(RenderLimitExceeded) as raised:
        render(nested_each(5), data, budget=Budget(max_steps=100_000))  # 10**10 iterations asked
    assert raised.value.kind == "steps"
    assert str(raised.value) == "The template takes more than 100000 steps to render."
    assert time.perf_counter() - started < 1


def test_empty_loop_bodies_still_cost_steps() -> None:
    with pytest.raises(RenderLimitExceeded) as raised:
        render(nested_each(2, body=""), {"a": list(range(100))}, budget=Budget(max_steps=5000))
    assert raised.value.kind == "steps"


def test_doubling_partials_bomb_runs_out_of_characters_early() -> None:
    template = doubling_partials(20)
    assert len(template) < 1000
    assert render(doubling_partials(4), {}) == "ab" * 16
    started = time.perf_counter()
    with pytest.raises(RenderLimitExceeded) as raised:
        render(template, {}, budget=Budget(max_chars=100_000))  # 2 MB asked
    assert raised.value.kind == "size"
    assert str(raised.value) == "The rendered template is longer than 100000 characters."
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    ("template", "data"),
    [
        ("{{a}}{{a}}{{a}}", {"a": "x" * 400}),  # printed values count
        ("x" * 1001, {}),  # and so does the template's own text
        ('{{#*inline "p"}}line\nline\n{{/inline}}\n' + "    {{> p}}\n" * 80, {}),  # indents too
    ],
)
def test_output_characters_are_counted(template: str, data: dict[str, Any]) -> None:
    with pytest.raises(RenderLimitExceeded) as raised:
        render(template, data, budget=Budget(max_chars=1000))
    assert raised.value.kind == "size"


def test_parts_share_one_budget() -> None:
    assert render_parts("s" * 300, "h" * 300, "t" * 300, {}, Budget(max_chars=1000))[0] == "s" * 300
    with pytest.raises(RenderLimitExceeded):
        render_parts("s" * 400, "h" * 400, "t" * 400, {}, Budget(max_chars=1000))


def test_time_limit() -> None:
    budget = Budget(max_steps=10**12, max_chars=10**12, seconds=0.05)
    started = time.perf_counter()
    with pytest.raises(RenderLimitExceeded) as raised:
        render(nested_each(6, body=""), {"a": list(range(100))}, budget=budget)
    assert raised.value.kind == "time"
    assert str(raised.value) == "The template takes more than 0.05 s to render."
    assert time.perf_counter() - started < 0.5
    with pytest.raises(RenderLimitExceeded) as raised:  # a fresh budget keeps the deadline
        render(nested_each(2, body=""), {"a": list(range(100))}, budget=budget.fresh())
    assert raised.value.kind == "time"


def test_honest_large_template_fits_the_default_budget() -> None:
    # A long order confirmation: 5,000 line items, each a row of ten fields (about 260 KB of data,
    # the most SES accepts as TemplateData), rendered into about 1 MB.
    items = [{f"f{i}": f"value{i}" for i in range(10)} for _ in range(5000)]
    row = "<tr>" + "".join(f"<td>{{{{f{i}}}}}</td>" for i in range(10)) + "</tr>\n"
    out = render("{{#each items}}" + row + "{{/each}}", {"items": items})
    assert out.count("<tr>") == 5000


def test_long_parent_chain_costs_little() -> None:
    template = "{{#each a}}{{#each ../a}}{{" + "../" * 100_000 + "x}}{{/each}}{{/each}}"
    started = time.perf_counter()
    assert render(template, {"a": list(range(100))}) == ""
    assert time.perf_counter() - started < 1


# ------------------------------------------------------------------------------------------------ missing


@pytest.mark.parametrize(
    ("template", "data", "name"),
    [
        ("Hello {{name}}", {}, "name"),
        ("{{contact.firstName}}", {"other": 1}, "contact.firstName"),
        ("{{#if show}}{{detail}}{{/if}}", {"show": True}, "detail"),
        ("{{#if show}}x{{else}}{{detail}}{{/if}}", {"show": False}, "detail"),
        ('{{#*inline "p"}}{{inner}}{{/inline}}{{> p}}', {}, "inner"),
        ("{{IF firstName}}", {"firstName": "Ann"}, "IF"),
        ("{{#IF firstName}}Hey{{/IF}}", {"firstName": "Ann"}, "IF"),
    ],
)
def test_missing_top_level_attribute(template: str, data: dict[str, Any], name: str) -> None:
    with pytest.raises(MissingAttribute) as raised:
        render(template, data)
    assert raised.value.name == name
    assert str(raised.value) == f"Attribute '{name}' is not present in the rendering data."
    render(template, data, strict=False)  # renders, with the value empty


@pytest.mark.parametrize(
    ("template", "data", "expected"),
    [
        ("[{{name}}]", {"name": None}, "[]"),  # present, even though null
        ("[{{contact.firstName}}]", {"contact": {}}, "[]"),  # only the first segment must exist
        ("{{#if absent}}x{{/if}}{{#unless absent}}u{{/unless}}", {}, "u"),
        ("{{#if show}}{{absent}}{{/if}}", {"show": False}, ""),  # a branch not taken is not checked
        ("{{#each items}}[{{absent}}]{{/each}}", {"items": [{}]}, "[]"),
        ("{{#each absent}}x{{/each}}", {}, ""),
        ("{{#with c}}[{{absent}}]{{/with}}", {"c": {"k": 1}}, "[]"),
        ("[{{this.absent}}][{{@index}}][{{lookup absent 'k'}}]", {}, "[][][]"),
        ("{{#section}}x{{/section}}", {}, ""),
    ],
)
def test_not_missing(template: str, data: dict[str, Any], expected: str) -> None:
    assert render(template, data) == expected


def test_non_strict_renders_missing_as_empty() -> None:
    assert render("Hi {{name}}, {{a.b}}!", {}, strict=False) == "Hi , !"


def test_render_parts_raises_the_first_missing_attribute() -> None:
    assert render_parts("S {{a}}", "<p>{{b}}</p>", None, {"a": 1, "b": 2}) == ("S 1", "<p>2</p>", None)
    assert render_parts("S", None, "T {{a}}", {"a": 1}) == ("S", None, "T 1")
    with pytest.raises(MissingAttribute) as raised:
        render_parts("{{subject}}", "{{html}}", "{{text}}", {"html": 1})
    assert raised.value.name == "subject"
    with pytest.raises(MissingAttribute) as raised:
        render_parts("x", "{{html}}", "{{text}}", {})
    assert raised.value.name == "html"


# ------------------------------------------------------------------------------------------------ invalid


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hello\n  {{#if a}}x", "Unclosed '{{#if a}}' at line 2, column 3."),
        ("x{{/if}}", "Unexpected '{{/if}}' at line 1, column 2."),
        ("{{#if a}}x{{/each}}", "'{{/each}}' does not close '{{#if a}}' at line 1, column 11."),
        ("a\nb\nc {{name", "Unclosed tag '{{' at line 3, column 3."),
        ("{{!-- never closed", "Unclosed tag '{{' at line 1, column 1."),
        ("{{> nowhere}}", "The partial 'nowhere' is not defined at line 1, column 1."),
        ("{{#each}}x{{/each}}", "'#each' takes exactly one argument at line 1, column 1."),
        ("{{#if a b}}x{{/if}}", "'#if' takes exactly one argument at line 1, column 1."),
        ("{{if a}}", "'if' is a block helper: use '{{#if ...}}' at line 1, column 1."),
        ("{{}}", "Empty tag '{{}}' at line 1, column 1."),
        ("{{a..b}}", "Invalid path 'a..b' at line 1, column 1."),
        ("{{#if a}}{{else}}{{else}}{{/if}}", "Second '{{else}}' in one block at line 1, column 18."),
        ("{{else}}", "'{{else}}' outside a block at line 1, column 1."),
        ("{{#*decorator}}{{/decorator}}", "Only '{{#*inline \"name\"}}' decorators are supported"),
        ("{{#each l as |x|}}{{/each}}", "Block parameters 'as |name|' are not supported"),
        ("{{lookup a}}", "'lookup' takes exactly two arguments"),
        ("{{a (b}}", "Unbalanced '('"),
    ],
)
def test_invalid_template(template: str, message: str) -> None:
    with pytest.raises(InvalidTemplate) as raised:
        check_template(template)
    assert str(raised.value).startswith(message)
    with pytest.raises(InvalidTemplate):
        render(template, {"a": 1})


def test_valid_template_checks_clean() -> None:
    check_template(
        '{{#*inline "p"}}{{x}}{{/inline}}\n{{#each l}}{{> p}}{{else}}{{#with o}}{{y}}{{/with}}{{/each}}'
    )


def test_exception_hierarchy() -> None:
    for error in (InvalidTemplate, InvalidTemplateData, MissingAttribute, RenderLimitExceeded):
        assert issubclass(error, TemplateError)


def test_compiled_templates_are_cached() -> None:
    template = "cached {{x}} " + "padding " * 50
    assert render(template, {"x": 1}) == render(template, {"x": 1})
    assert handlebars._compile(template) is handlebars._compile(template)


def test_template_cache_is_bounded_by_size() -> None:
    cache = handlebars._Cache()
    big = [f"{n} {{{{x}}}} " + "x" * (cache.MAX_CHARS // 5) for n in range(6)]  # 6 x 400 KB
    for source in big:
        assert cache.get(source) is cache.get(source)
    assert cache.chars <= cache.MAX_CHARS
    assert big[0] not in cache.programs and big[-1] in cache.programs  # the oldest went first
    huge = "x" * (cache.MAX_CHARS // 2 + 1)  # compiled, but never kept
    assert cache.get(huge) is not cache.get(huge)
    assert huge not in cache.programs


# ------------------------------------------------------------------------------------------------ data


def test_parse_template_data() -> None:
    assert parse_template_data('{ "name":"Alejandro", "favoriteanimal": "alligator" }') == {
        "name": "Alejandro",
        "favoriteanimal": "alligator",
    }
    assert parse_template_data('{"city": "\\u6771\\u4eac", "n": null}') == {"city": "東京", "n": None}


@pytest.mark.parametrize("text", ["", "not json", '{"a": 1', "[1, 2]", '"text"', "42", "null", '{"a": NaN}'])
def test_parse_template_data_rejects(text: str) -> None:
    with pytest.raises(InvalidTemplateData):
        parse_template_data(text)


def test_parse_template_data_rejects_absurd_nesting() -> None:
    with pytest.raises(InvalidTemplateData):
        parse_template_data("[" * 100_000)


# ------------------------------------------------------------------------------------------------ SES guide

# The "Advanced email personalization" examples of the SES developer guide: their template structure and
# data, with line breaks removed as the guide instructs (prose shortened).
PREFERENCES_HTML = (
    "<h1>Your Preferences</h1><p>Dear {{contact.firstName}},</p>"
    "{{#if subscription}}<p>You chose these subjects:</p>"
    "<ul>{{#each subscription}}<li>{{interest}}</li>{{/each}}"
    "</ul><p>Change them in the <a href=https://www.example.com/prefererences/i.aspx?id={{meta.userId}}>"
    "Preference Center</a>.</p>{{else}}<p>Please choose subjects in the "
    "<a href=https://www.example.com/prefererences/i.aspx?id={{meta.userId}}>Preference Center</a>.{{/if}}"
)
PREFERENCES_TEXT = (
    "Your Preferences\n\nDear {{contact.firstName}},\n\n{{#if subscription}}You chose these subjects:\n"
    "{{#each subscription}}- {{interest}}\n{{/each}}\nChange them at "
    "https://www.example.com/prefererences/i.aspx?id={{meta.userId}}.{{else}}Please choose subjects at "
    "https://www.example.com/prefererences/i.aspx?id={{meta.userId}}.{{/if}}"
)
PREFERENCES_SUBJECT = "Subscription Preferences for {{contact.firstName}} {{contact.lastName}}"
ANAYA = json.dumps(
    {
        "meta": {"userId": "51806220607"},
        "contact": {"firstName": "Anaya", "lastName": "Iyengar"},
        "subscription": [{"interest": "Sports"}, {"interest": "Cooking"}],
    }
)
SHIRLEY = json.dumps(
    {"meta": {"userId": "1981624758263"}, "contact": {"firstName": "Shirley", "lastName": "Rodriguez"}}
)


def test_ses_guide_example_with_subscriptions() -> None:
    subject, html, text = render_parts(
        PREFERENCES_SUBJECT, PREFERENCES_HTML, PREFERENCES_TEXT, parse_template_data(ANAYA)
    )
    assert subject == "Subscription Preferences for Anaya Iyengar"
    assert html == (
        "<h1>Your Preferences</h1><p>Dear Anaya,</p><p>You chose these subjects:</p>"
        "<ul><li>Sports</li><li>Cooking</li></ul><p>Change them in the "
        "<a href=https://www.example.com/prefererences/i.aspx?id=51806220607>Preference Center</a>.</p>"
    )
    # {{/each}} stands alone on its line, so that line (and its newline) is not rendered.
    assert text == (
        "Your Preferences\n\nDear Anaya,\n\nYou chose these subjects:\n- Sports\n- Cooking\n"
        "Change them at https://www.example.com/prefererences/i.aspx?id=51806220607."
    )


def test_ses_guide_example_without_subscriptions_takes_else() -> None:
    # "subscription" is absent: used only as a condition and an #each argument, so it is not "missing".
    subject, html, text = render_parts(
        PREFERENCES_SUBJECT, PREFERENCES_HTML, PREFERENCES_TEXT, parse_template_data(SHIRLEY)
    )
    assert subject == "Subscription Preferences for Shirley Rodriguez"
    assert html == (
        "<h1>Your Preferences</h1><p>Dear Shirley,</p><p>Please choose subjects in the "
        "<a href=https://www.example.com/prefererences/i.aspx?id=1981624758263>Preference Center</a>."
    )
    assert text == (
        "Your Preferences\n\nDear Shirley,\n\n"
        "Please choose subjects at https://www.example.com/prefererences/i.aspx?id=1981624758263."
    )


def test_ses_guide_inline_partial_example() -> None:
    html = (
        '{{#* inline "fullName"}}{{firstName}}{{#if lastName}} {{lastName}}{{/if}}{{/inline~}}\n'
        "<h1>Hello {{> fullName}}!</h1><p>Your friends:</p>"
        "<ul>{{#each friends}}<li>{{> fullName}}</li>{{/each}}</ul>"
    )
    text = (
        '{{#* inline "fullName"}}{{firstName}}{{#if lastName}} {{lastName}}{{/if}}{{/inline~}}\n'
        "Hello {{> fullName}}! Your friends:\n{{#each friends}}- {{> fullName}}\n{{/each}}"
    )
    data = {
        "firstName": "Anaya",
        "lastName": "Iyengar",
        "friends": [{"firstName": "Shirley", "lastName": "Rodriguez"}, {"firstName": "Liu"}],
    }
    assert render_parts("{{firstName}}'s friends", html, text, data) == (
        "Anaya's friends",
        "<h1>Hello Anaya Iyengar!</h1><p>Your friends:</p><ul><li>Shirley Rodriguez</li><li>Liu</li></ul>",
        "Hello Anaya Iyengar! Your friends:\n- Shirley Rodriguez\n- Liu\n",
    )


def test_multiline_template_as_sent_through_an_sdk() -> None:
    text = "Dear {{contact.firstName}},\n{{#each subscription}}\n- {{interest}}\n{{/each}}\nBye"
    assert render(text, parse_template_data(ANAYA)) == "Dear Anaya,\n- Sports\n- Cooking\nBye"
