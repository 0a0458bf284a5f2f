"""Render SES email templates (the Handlebars dialect SES speaks).

Used by v1 CreateTemplate/UpdateTemplate/TestRenderTemplate/SendTemplatedEmail/SendBulkTemplatedEmail and
v2 CreateEmailTemplate/UpdateEmailTemplate/TestRenderEmailTemplate/SendEmail/SendBulkEmail with Template
content. Callers map the exceptions: ``InvalidTemplate`` -> ``InvalidTemplate`` (v1) / ``BadRequestException``
(v2); ``InvalidTemplateData`` -> ``InvalidRenderingParameter`` / ``BadRequestException``;
``MissingAttribute`` -> ``MissingRenderingAttribute`` in a test render; ``RenderLimitExceeded`` ->
``InvalidTemplate`` ("could not be rendered") / ``BadRequestException``. At send time any rendering error is
an accepted message that is not sent but produces a Rendering Failure event carrying ``str(exc)`` as its
errorMessage.

Language (Handlebars.js semantics unless noted):

* ``{{a}}``, ``{{a.b.c}}``, ``{{a.[0]}}``, ``{{this}}``, ``{{this.a}}``, ``{{../a}}``, ``{{@root.a}}``,
  ``{{@index}}``/``{{@key}}``/``{{@first}}``/``{{@last}}``, ``{{list.length}}``.
* Blocks ``#if`` / ``#unless`` (``includeZero=true``), ``#each`` (lists and objects), ``#with``, ``{{else}}``,
  ``{{else if x}}`` chains, and mustache sections ``{{#name}}``/``{{^name}}``; helpers ``lookup`` and ``log``
  (renders nothing); subexpressions ``(lookup a b)``.
* Inline partials ``{{#*inline "name"}}...{{/inline}}`` (``{{#* inline`` too, as the SES guide writes it)
  used with ``{{> name}}`` or ``{{> name context}}``; partials exist only inside the part that defines them.
* Comments ``{{! }}`` / ``{{!-- --}}``, whitespace control ``~``, standalone block lines removed, ``\\{{``
  for a literal ``{{``.
* No HTML escaping: SES inserts ``{{x}}`` as is, so ``{{x}}`` behaves like ``{{{x}}}``.
* SES's own placeholders ``{{ses:openTracker}}`` and ``{{amazonSESUnsubscribeUrl}}`` pass through verbatim
  for the tracking and subscription stages, which fill them in templated and plain mail alike.
* One newline right after ``{{/inline}}`` is dropped: the SES guide says the newline that must follow an
  inline partial definition "isn't rendered" (stock Handlebars would print it).
* Values print as JavaScript would: ``true``, ``1`` for 1.0, lists joined by ``,``, objects as
  ``[object Object]``, null as nothing.

Missing attributes. SES fails a render when the template prints an attribute the data lacks (AWS
re:Post "ses-sendtemplatedemail-delivery-failure"; message "Attribute 'x' is not present in the rendering
data."). We raise ``MissingAttribute`` only for a plain path (``{{name}}``, ``{{a.b}}``: no ``this``, ``../``
or ``@``) that is printed while the context is the top-level data (not inside ``#each``/``#with``/a section
or a partial given a context) and whose first segment is absent; checked as rendered, so a branch not taken
never fails. Conditions, ``#each`` arguments and paths inside iterations never fail, a key present with
null is not missing, and ``{{a.b}}`` with ``a`` present renders empty. An unknown helper call such as
``{{#IF x}}`` is looked up as an attribute of that name (arguments ignored), because SES was seen answering
"Attribute 'IF' is not present in the rendering data." for one.

Budget. Nesting depth is limited at parse time, but nesting does not bound the work: ``{{#each a}}`` inside
``{{#each ../a}}`` inside ``{{#each ../../a}}`` over a 100-item list runs its body a million times, and
twenty inline partials that each call the previous one twice print 2**20 copies from under 1 KB. So every
rendering is charged against a ``Budget`` as it goes: output characters (text, printed values, partial
indentation), evaluation steps (one per block body or partial entered, plus one per node in it) and,
optionally, wall-clock time (the clock is read every few thousand steps). An overrun raises
``RenderLimitExceeded`` at once, before the output grows further; callers choose the limits (see
``domain/templates.py``).

Why not a library: of the PyPI Handlebars ports, dotpromptz-handlebars (Google, pure Python) is the most
faithful, but it rejects the ``{{#* inline`` spelling from the SES guide, prints the newline SES drops,
reports syntax errors without a position, exposes its parse tree only from a private module (which the
missing-attribute walk needs), and took ~105 us per render of a 2 KB / 10-variable template against ~5 us
here. pybars3 is unmaintained since 2019 and lacks inline partials and ``else if``; pydantic-handlebars
lacks inline partials; pyhandlebars (Rust) cannot turn off HTML escaping. So this is a small parser that
builds a node tree, and a recursive evaluator over it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

__all__ = [
    "Budget",
    "InvalidTemplate",
    "InvalidTemplateData",
    "MissingAttribute",
    "RenderLimitExceeded",
    "TemplateError",
    "check_template",
    "parse_template_data",
    "render",
    "render_parts",
]

# Placeholders SES itself replaces after rendering; they are never template data.
_PASSTHROUGH = frozenset({"ses:openTracker", "amazonSESUnsubscribeUrl"})
# Bounds keep a hostile template from exhausting the Python stack.
_MAX_NESTING = 100
_MAX_PARTIAL_DEPTH = 32
# A rendering's default budget (callers pass their own): nesting alone does not bound the work, since
# nested #each over one list, or partials that each call the previous one twice, multiply it.
DEFAULT_MAX_CHARS = 10 * 1024 * 1024
DEFAULT_MAX_STEPS = 2_000_000
# How many steps pass between two looks at the clock (a step costs well under a microsecond).
_CLOCK_EVERY = 4096


class TemplateError(Exception):
    """A template could not be compiled or rendered."""


class InvalidTemplate(TemplateError):
    """The template text is not valid (the message gives line and column)."""


class InvalidTemplateData(TemplateError):
    """The template data is not a JSON object."""


class RenderLimitExceeded(TemplateError):
    """A rendering outgrew its budget: ``kind`` says whether output size, evaluation steps or time."""

    def __init__(self, kind: Literal["size", "steps", "time"], message: str) -> None:
        super().__init__(message)
        self.kind = kind


class MissingAttribute(TemplateError):
    """The template prints a top-level attribute the data does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Attribute '{name}' is not present in the rendering data.")
        self.name = name


class Budget:
    """What one rendering may spend, charged as it goes so that a template bomb stops early: output
    characters, evaluation steps (one per block body or partial entered, plus one per node in it) and,
    with ``seconds``, wall-clock time from the budget's creation. One budget may be shared by the parts
    of a message, which then count together."""

    __slots__ = ("max_chars", "max_steps", "seconds", "deadline", "chars", "steps", "clock_at")

    def __init__(
        self,
        max_chars: int = DEFAULT_MAX_CHARS,
        max_steps: int = DEFAULT_MAX_STEPS,
        seconds: float | None = None,
        *,
        deadline: float | None = None,
    ) -> None:
        self.max_chars, self.max_steps, self.seconds = max_chars, max_steps, seconds
        if deadline is None and seconds is not None:
            deadline = time.monotonic() + seconds
        self.deadline = deadline
        self.chars, self.steps = max_chars, max_steps  # what is left; the hot path only subtracts
        self.clock_at = max(0, max_steps - _CLOCK_EVERY)

    def fresh(self) -> Budget:
        """The same limits with nothing spent, and the same deadline (a second rendering of one request)."""
        return Budget(self.max_chars, self.max_steps, self.seconds, deadline=self.deadline)

    def check(self) -> None:
        """Called when the counters say so: raise on an overrun, else look at the clock."""
        if self.chars < 0:
            raise RenderLimitExceeded(
                "size", f"The rendered template is longer than {self.max_chars} characters."
            )
        if self.steps < 0:
            raise RenderLimitExceeded(
                "steps", f"The template takes more than {self.max_steps} steps to render."
            )
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise RenderLimitExceeded("time", f"The template takes more than {self.seconds:g} s to render.")
        self.clock_at = max(0, self.steps - _CLOCK_EVERY)


# ---------------------------------------------------------------------------------------------- public API


def parse_template_data(text: str) -> dict[str, Any]:
    """Parse TemplateData / ReplacementTemplateData; it must be a JSON object."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidTemplateData(f"Template data is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidTemplateData("Template data must be a JSON object.")
    return data


def check_template(text: str) -> None:
    """Raise InvalidTemplate if ``text`` does not compile (syntax, or a partial that is never defined)."""
    _compile(text)


def render(text: str, data: dict[str, Any], *, strict: bool = True, budget: Budget | None = None) -> str:
    """Render ``text`` with ``data``. With ``strict`` a missing top-level attribute raises MissingAttribute;
    without it, it renders as an empty string. Going over ``budget`` raises RenderLimitExceeded."""
    out: list[str] = []
    program = _compile(text)
    budget = Budget() if budget is None else budget
    try:
        program.render(out, _Frame(data, None, {"root": data}, {}, True, strict, 0, budget))
    except RecursionError:  # deep blocks inside deeply nested partials: a template fault, not ours
        raise InvalidTemplate("The template nests blocks and partials too deeply to render.") from None
    return "".join(out)


def render_parts(
    subject: str, html: str | None, text: str | None, data: dict[str, Any], budget: Budget | None = None
) -> tuple[str, str | None, str | None]:
    """Render a template's parts strictly under one budget; the first MissingAttribute (subject, html,
    text) is raised."""
    budget = Budget() if budget is None else budget
    return (
        render(subject, data, budget=budget),
        None if html is None else render(html, data, budget=budget),
        None if text is None else render(text, data, budget=budget),
    )


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (and SES's parser) does not.
    raise ValueError(f"{name} is not JSON")


# ---------------------------------------------------------------------------------------------- evaluation


class _Frame:
    """One scope: the current context object, its parent scope, @data variables, visible partials."""

    __slots__ = ("ctx", "parent", "vars", "partials", "top", "strict", "depth", "budget")

    def __init__(
        self,
        ctx: Any,
        parent: _Frame | None,
        vars: dict[str, Any],
        partials: dict[str, _Program],
        top: bool,
        strict: bool,
        depth: int,
        budget: Budget,
    ) -> None:
        self.ctx, self.parent, self.vars, self.partials = ctx, parent, vars, partials
        self.top, self.strict, self.depth, self.budget = top, strict, depth, budget

    def child(self, ctx: Any, vars: dict[str, Any] | None = None) -> _Frame:
        vars = self.vars if vars is None else vars
        return _Frame(ctx, self, vars, self.partials, False, self.strict, self.depth, self.budget)

    def variant(self, partials: dict[str, _Program], depth: int) -> _Frame:
        # Same scope (so ../ and the top-level check are unchanged), different partials or partial depth.
        return _Frame(self.ctx, self.parent, self.vars, partials, self.top, self.strict, depth, self.budget)


class _Program:
    """A sequence of nodes (text is a plain str) plus the inline partials defined directly in it, and the
    length of its text (so that rendering charges the budget once per program, not per node)."""

    __slots__ = ("nodes", "partials", "chars")

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.partials: dict[str, _Program] = {}
        self.chars = 0

    def add_text(self, text: str) -> None:
        self.nodes.append(text)
        self.chars += len(text)

    def render(self, out: list[str], frame: _Frame) -> None:
        budget = frame.budget
        budget.steps -= len(self.nodes) + 1  # + 1: an empty body entered a million times is work too
        budget.chars -= self.chars
        if budget.steps < budget.clock_at or budget.chars < 0:
            budget.check()
        if self.partials:  # inline partials are visible in the block that defines them, and below
            frame = frame.variant({**frame.partials, **self.partials}, frame.depth)
        for node in self.nodes:
            if type(node) is str:
                out.append(node)
            else:
                node.render(out, frame)


class _Path:
    __slots__ = ("parts", "up", "data", "plain", "text")

    def __init__(self, parts: list[str], up: int, data: bool, plain: bool, text: str) -> None:
        self.parts, self.up, self.data, self.plain, self.text = parts, up, data, plain, text

    def get(self, frame: _Frame) -> Any:
        scope = frame
        for _ in range(self.up):  # ../ beyond the top-level scope finds nothing, as in Handlebars.js
            if scope.parent is None:  # and stops there: a path may say ../ a hundred thousand times
                return None
            scope = scope.parent
        if self.data:
            value = scope.vars.get(self.parts[0])
            rest = self.parts[1:]
        else:
            value, rest = scope.ctx, self.parts
        for part in rest:
            if isinstance(value, dict):
                value = value.get(part)
            elif isinstance(value, list | str):
                if part == "length":
                    value = len(value)
                elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                    value = value[int(part)]
                else:
                    return None
            else:
                return None
        return value


class _Literal:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self, frame: _Frame) -> Any:
        return self.value


class _Call:
    """A call of the inline helpers ``lookup`` and ``log`` (as a mustache or a subexpression)."""

    __slots__ = ("name", "args")

    def __init__(self, name: str, args: list[Any]) -> None:
        self.name, self.args = name, args

    def get(self, frame: _Frame) -> Any:
        if self.name == "log":
            return None
        target, key = (arg.get(frame) for arg in self.args)
        if isinstance(target, dict):
            return target.get(key if isinstance(key, str) else _to_text(key))
        if isinstance(target, list) and isinstance(key, int) and not isinstance(key, bool):
            return target[key] if 0 <= key < len(target) else None
        if isinstance(target, list) and isinstance(key, str) and key.isdigit():
            return target[int(key)] if int(key) < len(target) else None
        return None


class _Output:
    __slots__ = ("expr", "check")

    def __init__(self, expr: Any) -> None:
        self.expr = expr
        self.check = isinstance(expr, _Path) and expr.plain

    def render(self, out: list[str], frame: _Frame) -> None:
        expr = self.expr
        if self.check and frame.top and frame.strict and expr.parts[0] not in frame.ctx:
            raise MissingAttribute(expr.text)
        value = expr.get(frame)
        text = value if type(value) is str else _to_text(value)
        budget = frame.budget
        budget.chars -= len(text)
        if budget.chars < 0:
            budget.check()
        out.append(text)


_Helper = Callable[["_Block", list[str], "_Frame"], None]


class _Block:
    __slots__ = ("helper", "args", "hash", "body", "inverse", "check")

    def __init__(self, helper: _Helper, args: list[Any], hash: dict[str, Any], check: bool) -> None:
        self.helper, self.args, self.hash, self.check = helper, args, hash, check
        self.body, self.inverse = _Program(), _Program()

    def render(self, out: list[str], frame: _Frame) -> None:
        self.helper(self, out, frame)


class _Partial:
    __slots__ = ("name", "context", "indent", "pos")

    def __init__(self, name: str, context: Any, indent: str, pos: int) -> None:
        self.name, self.context, self.indent, self.pos = name, context, indent, pos

    def render(self, out: list[str], frame: _Frame) -> None:
        body = frame.partials.get(self.name)
        if body is None:  # check_template catches the usual case; scoping can still hide one at run time
            raise InvalidTemplate(f"The partial '{self.name}' is not defined where it is used.")
        if frame.depth >= _MAX_PARTIAL_DEPTH:
            raise InvalidTemplate(f"Partials nested more than {_MAX_PARTIAL_DEPTH} deep at '{self.name}'.")
        inner = frame.variant(frame.partials, frame.depth + 1)
        if self.context is not None:
            inner = inner.child(self.context.get(frame))
        if not self.indent:
            body.render(out, inner)
            return
        # A standalone partial is indented line by line, like Handlebars.js does.
        part: list[str] = []
        body.render(part, inner)
        lines = "".join(part).splitlines(keepends=True)
        frame.budget.chars -= len(self.indent) * len(lines)
        if frame.budget.chars < 0:
            frame.budget.check()
        out.append("".join(self.indent + line for line in lines))


def _is_empty(value: Any) -> bool:
    # Handlebars' isEmpty: null, false, "" and [] (0 and {} are not empty).
    return value is None or value is False or (isinstance(value, str | list) and not value)


def _if(block: _Block, out: list[str], frame: _Frame, negate: bool = False) -> None:
    value = block.args[0].get(frame)
    shown = not _is_empty(value)
    if shown and type(value) in (int, float) and value == 0:
        zero = block.hash.get("includeZero")
        shown = zero is not None and not _is_empty(zero.get(frame))
    (block.body if shown != negate else block.inverse).render(out, frame)


def _unless(block: _Block, out: list[str], frame: _Frame) -> None:
    _if(block, out, frame, negate=True)


def _with(block: _Block, out: list[str], frame: _Frame) -> None:
    value = block.args[0].get(frame)
    if _is_empty(value):
        block.inverse.render(out, frame)
    else:
        block.body.render(out, frame.child(value))


def _each(block: _Block, out: list[str], frame: _Frame, items: Any = None) -> None:
    if items is None:
        items = block.args[0].get(frame)
    if isinstance(items, dict):
        pairs = list(items.items())
    else:
        pairs = list(enumerate(items)) if isinstance(items, list) else []
    if not pairs:
        block.inverse.render(out, frame)
        return
    last = len(pairs) - 1
    for index, (key, item) in enumerate(pairs):
        extra = {"index": index, "key": key, "first": index == 0, "last": index == last}
        block.body.render(out, frame.child(item, {**frame.vars, **extra}))


def _section(block: _Block, out: list[str], frame: _Frame) -> None:
    # {{#name}} with no helper of that name: Handlebars' blockHelperMissing (Mustache sections).
    path = block.args[0]
    if block.check and frame.top and frame.strict and path.parts[0] not in frame.ctx:
        raise MissingAttribute(path.text)
    value = path.get(frame)
    if isinstance(value, list):
        _each(block, out, frame, value)
    elif value is None or value is False:
        block.inverse.render(out, frame)
    else:
        block.body.render(out, frame if value is True else frame.child(value))


def _inverse_section(block: _Block, out: list[str], frame: _Frame) -> None:
    # {{^name}}: the body shows when the value is empty (the parser stored it as the inverse).
    value = block.args[0].get(frame)
    (block.inverse if _is_empty(value) else block.body).render(out, frame)


_BLOCK_HELPERS: dict[str, _Helper] = {
    "if": _if,
    "unless": _unless,
    "each": _each,
    "with": _with,
}


def _to_text(value: Any) -> str:
    """Print a JSON value the way JavaScript's String() would (SES templates are Handlebars.js-shaped)."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, list):
        return ",".join(_to_text(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


# ---------------------------------------------------------------------------------------------- parsing


class _Tag:
    __slots__ = ("kind", "body", "pos", "lstrip", "rstrip", "standalone", "indent")

    def __init__(self, kind: str, body: str, pos: int, lstrip: bool, rstrip: bool) -> None:
        self.kind, self.body, self.pos, self.lstrip, self.rstrip = kind, body, pos, lstrip, rstrip
        self.standalone, self.indent = False, ""


_OPEN = re.compile(r"\{\{(~?)(\{|!--|!)?")
_CLOSE = {
    "{": re.compile(r"\}(~?)\}\}"),
    "!--": re.compile(r"--(~?)\}\}"),
    "!": re.compile(r"(~?)\}\}"),
    None: re.compile(r"(~?)\}\}"),
}
# Tags that may stand alone on a line, whose line then disappears from the output.
_LINE_TAGS = frozenset({"comment", "open", "inverse", "inline", "close", "else", "partial"})
_ARG = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<paren>[()])|(?P<key>[^\s=()"']+)=(?!=)
    |(?P<word>(?:\[[^\]]*\]|[^\s()=\[\]"'])+))""",
    re.X,
)
_SEGMENT = re.compile(r"\[([^\]]*)\]|([^\s!\"#%&'()*+,./;<=>@\[\\\]^`{|}~]+)")
_NUMBER = re.compile(r"-?\d+(\.\d+)?$")
_KEYWORDS = {"true": True, "false": False, "null": None, "undefined": None}


def _where(source: str, pos: int) -> str:
    line = source.count("\n", 0, pos) + 1
    return f"line {line}, column {pos - source.rfind(chr(10), 0, pos)}"


def _fail(source: str, pos: int, message: str) -> InvalidTemplate:
    return InvalidTemplate(f"{message} at {_where(source, pos)}.")


def _scan(source: str) -> tuple[list[str], list[_Tag]]:
    """Split the source into texts and tags, texts[i] preceding tags[i] (one more text than tags)."""
    texts: list[str] = []
    tags: list[_Tag] = []
    text, pos = "", 0
    while (start := source.find("{{", pos)) >= 0:
        if start > pos and source[start - 1] == "\\":  # \{{ is a literal {{
            text += source[pos : start - 1] + "{{"
            pos = start + 2
            continue
        opener = _OPEN.match(source, start)
        assert opener is not None  # the pattern matches any "{{"
        kind = opener.group(2)
        closer = _CLOSE[kind].search(source, opener.end())
        if closer is None:
            raise _fail(source, start, "Unclosed tag '{{'")
        body = source[opener.end() : closer.start()]
        tag_kind = "comment" if kind in ("!", "!--") else "raw" if kind == "{" else "tag"
        texts.append(text + source[pos:start])
        tags.append(_Tag(tag_kind, body.strip(), start, bool(opener.group(1)), bool(closer.group(1))))
        text, pos = "", closer.end()
    texts.append(text + source[pos:])
    return texts, tags


def _classify(tag: _Tag) -> None:
    if tag.kind != "tag":
        return
    body = tag.body
    first = body[:1]
    if body.startswith("#*"):
        tag.kind, tag.body = "inline", body[2:].strip()
    elif first == "#":
        tag.kind, tag.body = "open", body[1:].strip()
    elif first == "^":
        tag.kind, tag.body = ("else", "") if body == "^" else ("inverse", body[1:].strip())
    elif first == "/":
        tag.kind, tag.body = "close", body[1:].strip()
    elif first == ">":
        tag.kind, tag.body = "partial", body[1:].strip()
    elif body == "else" or body.startswith(("else ", "else\t", "else\n")):
        tag.kind, tag.body = "else", body[4:].strip()
    else:
        tag.kind, tag.body = "output", body[1:].strip() if first == "&" else body


def _trim(texts: list[str], tags: list[_Tag]) -> None:
    """Handlebars' whitespace rules: standalone lines, then ``~``, then SES's newline after an inline."""
    last = len(tags) - 1
    cut_start = [0] * len(texts)
    cut_end = [len(text) for text in texts]
    for i, tag in enumerate(tags):
        if tag.kind not in _LINE_TAGS:
            continue
        before, after = texts[i], texts[i + 1]
        line_start = before.rfind("\n") + 1
        line_end = after.find("\n")
        if (line_start or i == 0) and not before[line_start:].strip() and (line_end >= 0 or i == last):
            if not after[: line_end if line_end >= 0 else len(after)].strip():
                tag.standalone, tag.indent = True, before[line_start:]
                cut_end[i] = min(cut_end[i], line_start)
                cut_start[i + 1] = line_end + 1 if line_end >= 0 else len(after)
    for i, text in enumerate(texts):
        texts[i] = text[cut_start[i] : max(cut_start[i], cut_end[i])]
    for i, tag in enumerate(tags):
        if tag.lstrip:
            texts[i] = texts[i].rstrip()
        if tag.rstrip:
            texts[i + 1] = texts[i + 1].lstrip()
        elif tag.kind == "close" and tag.body == "inline" and not tag.standalone:
            after = texts[i + 1]
            texts[i + 1] = after[2:] if after.startswith("\r\n") else after.removeprefix("\n")


class _Open:
    """A block being parsed: the tag that opened it, its node (None for an inline partial), the program it
    sits in, the program its {{else}} switches to, and whether that happened."""

    __slots__ = ("tag", "block", "holder", "other", "in_else")

    def __init__(self, tag: _Tag, block: _Block | None, holder: _Program, other: _Program | None) -> None:
        self.tag, self.block, self.holder, self.other, self.in_else = tag, block, holder, other, False


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, pos: int, message: str) -> InvalidTemplate:
        return _fail(self.source, pos, message)

    def parse(self) -> _Program:
        texts, tags = _scan(self.source)
        for tag in tags:
            _classify(tag)
        _trim(texts, tags)
        root = program = _Program()
        stack: list[_Open] = []
        for text, tag in zip(texts, tags, strict=False):
            if text:
                program.add_text(text)
            kind = tag.kind
            if kind in ("open", "inverse", "inline") and len(stack) >= _MAX_NESTING:
                raise self.fail(tag.pos, f"Blocks nested more than {_MAX_NESTING} deep")
            if kind in ("output", "raw"):
                node = self.output(tag)
                if type(node) is str:  # SES's own placeholders stay as text
                    program.add_text(node)
                else:
                    program.nodes.append(node)
            elif kind == "partial":
                program.nodes.append(self.partial(tag))
            elif kind == "open" or kind == "inverse":
                block = self.block(tag)
                program.nodes.append(block)
                first, other = (
                    (block.inverse, block.body) if kind == "inverse" else (block.body, block.inverse)
                )
                stack.append(_Open(tag, block, program, other))
                program = first
            elif kind == "inline":
                stack.append(_Open(tag, None, program, None))
                body = program.partials[self.inline_name(tag)] = _Program()
                program = body
            elif kind == "else":
                program = self.else_branch(tag, stack[-1] if stack else None)
            elif kind == "close":
                if not stack:
                    raise self.fail(tag.pos, f"Unexpected '{{{{/{tag.body}}}}}'")
                opened = stack.pop()
                name = "inline" if opened.block is None else self.tokens(opened.tag)[0][1]
                if tag.body != name:
                    raise self.fail(
                        tag.pos, f"'{{{{/{tag.body}}}}}' does not close '{{{{#{opened.tag.body}}}}}'"
                    )
                program = opened.holder
        if texts[-1]:
            program.add_text(texts[-1])
        if stack:
            raise self.fail(stack[-1].tag.pos, f"Unclosed '{{{{#{stack[-1].tag.body}}}}}'")
        self.check_partials(root, frozenset())
        return root

    # -- expressions --------------------------------------------------------------------------------------

    def tokens(self, tag: _Tag) -> list[tuple[str, str]]:
        """A tag body as (kind, text) tokens; kind is str, paren, key (text without "=") or word."""
        tokens, pos, body = [], 0, tag.body
        while pos < len(body) and body[pos:].strip():
            match = _ARG.match(body, pos)
            if match is None or match.lastgroup is None:
                raise self.fail(tag.pos, f"Cannot parse '{body[pos:].strip()}' in '{{{{{body}}}}}'")
            tokens.append((match.lastgroup, match.group(match.lastgroup)))
            pos = match.end()
        if not tokens:
            raise self.fail(tag.pos, "Empty tag '{{}}'")
        return tokens

    def call(self, tag: _Tag, tokens: list[tuple[str, str]]) -> tuple[Any, list[Any], dict[str, Any]]:
        """Tokens as (head, positional arguments, hash arguments)."""
        index, head = self.value(tag, tokens, 0)
        args: list[Any] = []
        hash: dict[str, Any] = {}
        while index < len(tokens):
            kind, text = tokens[index]
            if kind == "key":
                index, hash[text] = self.value(tag, tokens, index + 1)
            else:
                index, value = self.value(tag, tokens, index)
                args.append(value)
        return head, args, hash

    def value(self, tag: _Tag, tokens: list[tuple[str, str]], index: int) -> tuple[int, Any]:
        """The expression starting at tokens[index], and the index after it."""
        if index >= len(tokens):
            raise self.fail(tag.pos, f"Missing value in '{{{{{tag.body}}}}}'")
        kind, text = tokens[index]
        if kind == "str":
            return index + 1, _Literal(re.sub(r"\\(.)", r"\1", text[1:-1]))
        if kind == "word":
            return index + 1, self.path(tag, text)
        if text == "(":  # a subexpression: (helper args...)
            depth, end = 1, index + 1
            while end < len(tokens) and depth:
                if tokens[end][0] == "paren":
                    depth += 1 if tokens[end][1] == "(" else -1
                end += 1
            if depth or end == index + 2:
                raise self.fail(tag.pos, f"Unbalanced '(' in '{{{{{tag.body}}}}}'")
            head, args, _ = self.call(tag, tokens[index + 1 : end - 1])
            return end, self.helper_call(tag, head, args)
        raise self.fail(tag.pos, f"Unexpected '{text}' in '{{{{{tag.body}}}}}'")

    def path(self, tag: _Tag, word: str) -> Any:
        if word in _KEYWORDS:
            return _Literal(_KEYWORDS[word])
        if _NUMBER.match(word):
            return _Literal(float(word) if "." in word else int(word))
        text, data = word, word.startswith("@")
        word = word[1:] if data else word
        up = 0
        while word.startswith("../", 3 * up):  # counted first, sliced once: a long chain stays linear
            up += 1
        word = word[3 * up :]
        this = word in ("this", ".") or word.startswith(("this.", "this/", "./"))
        if this:
            word = word[2:] if word.startswith("./") else word[5:]
        parts, pos = [], 0
        while pos < len(word):
            match = _SEGMENT.match(word, pos)
            if match is None:
                raise self.fail(tag.pos, f"Invalid path '{text}'")
            parts.append(match.group(1) if match.group(1) is not None else match.group(2))
            pos = match.end()
            if pos < len(word):
                if word[pos] not in "./" or pos + 1 == len(word):
                    raise self.fail(tag.pos, f"Invalid path '{text}'")
                pos += 1
        if data and not parts:
            raise self.fail(tag.pos, f"Invalid path '{text}'")
        return _Path(parts, up, data, not (data or up or this), text)

    def helper_call(self, tag: _Tag, head: Any, args: list[Any]) -> Any:
        """What a mustache or subexpression evaluates: lookup/log, or an attribute."""
        name = head.text if isinstance(head, _Path) else None
        if name == "lookup":
            if len(args) != 2:
                raise self.fail(tag.pos, "'lookup' takes exactly two arguments")
            return _Call("lookup", args)
        if name == "log":
            return _Call("log", [])
        if name in _BLOCK_HELPERS:
            raise self.fail(tag.pos, f"'{name}' is a block helper: use '{{{{#{name} ...}}}}'")
        # Anything else is read as an attribute of that name; arguments are ignored (see module doc).
        return head

    # -- tags -----------------------------------------------------------------------------------------------

    def output(self, tag: _Tag) -> Any:
        if tag.body in _PASSTHROUGH:
            return "{{" + tag.body + "}}"
        if tag.body.startswith(("{", "*")):
            raise self.fail(tag.pos, f"Unsupported tag '{{{{{tag.body}}}}}' (raw blocks, decorators)")
        head, args, _ = self.call(tag, self.tokens(tag))
        return _Output(self.helper_call(tag, head, args))

    def block(self, tag: _Tag) -> _Block:
        if tag.body.startswith(">"):
            raise self.fail(tag.pos, "Partial blocks '{{#>' are not supported")
        if re.search(r"\sas\s+\|", tag.body):
            raise self.fail(tag.pos, "Block parameters 'as |name|' are not supported")
        head, args, hash = self.call(tag, self.tokens(tag))
        if not isinstance(head, _Path):
            raise self.fail(tag.pos, f"Invalid block '{{{{#{tag.body}}}}}'")
        if tag.kind == "inverse":
            return _Block(_inverse_section, [head], {}, False)
        helper = _BLOCK_HELPERS.get(head.text)
        if helper is not None:
            if len(args) != 1:
                raise self.fail(tag.pos, f"'#{head.text}' takes exactly one argument")
            return _Block(helper, args, hash, False)
        if head.text in ("lookup", "log"):
            raise self.fail(tag.pos, f"'{head.text}' cannot open a block")
        # Unknown block helper: a Mustache section; called with arguments it is checked like {{name}}.
        return _Block(_section, [head], {}, bool(args) and head.plain)

    def inline_name(self, tag: _Tag) -> str:
        tokens = self.tokens(tag)
        if len(tokens) != 2 or tokens[0] != ("word", "inline") or tokens[1][0] != "str":
            raise self.fail(tag.pos, "Only '{{#*inline \"name\"}}' decorators are supported")
        return tokens[1][1][1:-1]

    def else_branch(self, tag: _Tag, opened: _Open | None) -> _Program:
        if opened is None or opened.block is None or opened.other is None:
            raise self.fail(tag.pos, "'{{else}}' outside a block")
        if opened.in_else:
            raise self.fail(tag.pos, "Second '{{else}}' in one block")
        if not tag.body:
            opened.in_else = True
            return opened.other
        # {{else if x}}: a new block inside the else branch, closed by the first block's closing tag.
        inner = self.block(_Tag("open", tag.body, tag.pos, False, False))
        opened.other.nodes.append(inner)
        opened.block, opened.other = inner, inner.inverse
        return inner.body

    def partial(self, tag: _Tag) -> _Partial:
        tokens = self.tokens(tag)
        kind, name = tokens[0]
        if kind not in ("word", "str") or len(tokens) > 2 or (len(tokens) == 2 and tokens[1][0] != "word"):
            raise self.fail(tag.pos, f"Unsupported partial '{{{{> {tag.body}}}}}'")
        context = self.path(tag, tokens[1][1]) if len(tokens) == 2 else None
        return _Partial(name[1:-1] if kind == "str" else name, context, tag.indent, tag.pos)

    def check_partials(self, program: _Program, visible: frozenset[str]) -> None:
        """Every {{> name}} must see an inline partial defined in its block or an enclosing one."""
        visible = visible | program.partials.keys()
        for body in program.partials.values():
            self.check_partials(body, visible)
        for node in program.nodes:
            if isinstance(node, _Partial) and node.name not in visible:
                raise self.fail(node.pos, f"The partial '{node.name}' is not defined")
            if isinstance(node, _Block):
                self.check_partials(node.body, visible)
                self.check_partials(node.inverse, visible)


class _Cache:
    """Compiled templates, kept because one template renders for every recipient of a bulk send. Bounded
    by the total length of their text, not only by count: a parse tree takes up to ~40 times the memory
    of its source, and a template may be 1 MB (v2 inline content), so 256 of those would be gigabytes.
    Render threads share it, hence the lock."""

    MAX_CHARS = 2 * 1024 * 1024  # about 80 MB of parse trees at worst
    MAX_ENTRIES = 256

    def __init__(self) -> None:
        self.programs: OrderedDict[str, _Program] = OrderedDict()
        self.chars = 0
        self.lock = threading.Lock()

    def get(self, source: str) -> _Program:
        with self.lock:
            program = self.programs.get(source)
            if program is not None:
                self.programs.move_to_end(source)
                return program
        program = _Parser(source).parse()  # outside the lock: a big parse must not hold up the others
        if len(source) <= self.MAX_CHARS // 2:
            with self.lock:
                if source not in self.programs:
                    self.programs[source] = program
                    self.chars += len(source)
                while self.chars > self.MAX_CHARS or len(self.programs) > self.MAX_ENTRIES:
                    oldest, _ = self.programs.popitem(last=False)
                    self.chars -= len(oldest)
        return program


_compile = _Cache().get
