"""What every console page shares: the session check, the CSRF check on every form, rendering with the
layout, the security headers, and the server time of each page (``Server-Timing``, which
``bench/console.py`` reads).

A page is an ``async def handler(ctx: Ctx) -> Response`` wrapped by ``page(need)``, where ``need`` says
who may open it: ``"any"`` signed-in session, ``"account"`` (a session showing one account's pages),
``"operator"``, or ``"dev"`` (dev mode only: the inbox).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, quote, unquote

import jinja2
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from sesame.console.sessions import COOKIE, Principal

if TYPE_CHECKING:
    from sesame.console import Console

Need = Literal["any", "account", "operator", "dev"]
Handler = Callable[["Ctx"], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

PREFIX = "/console"
NOTICE_COOKIE = "sesame_notice"
#: A form this large is not a person's (the suppression CSV import posts a file: its own limit below).
MAX_FORM_BYTES = 256 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

#: Console pages run no inline script and load nothing from elsewhere; only the message view frames
#: (same origin) a captured message, under a stricter policy of its own (console/inbox.py).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Robots-Tag": "noindex",
}


@dataclass(frozen=True)
class NavItem:
    path: str  # under PREFIX
    label: str
    need: Need


#: The menu, in order. A page module owns the paths under its entry.
NAV = (
    NavItem("/inbox", "Inbox", "dev"),
    NavItem("/dashboard", "Dashboard", "account"),
    NavItem("/identities", "Identities", "account"),
    NavItem("/configuration-sets", "Configuration sets", "account"),
    NavItem("/templates", "Templates", "account"),
    NavItem("/messages", "Messages", "account"),
    NavItem("/suppression", "Suppression list", "account"),
    NavItem("/receiving", "Receiving", "account"),
    NavItem("/contact-lists", "Contact lists", "account"),
    NavItem("/tenants", "Tenants", "account"),
    NavItem("/operator/accounts", "Accounts", "operator"),
    NavItem("/operator/queue", "Queue", "operator"),
    NavItem("/operator/events", "Event publishing", "operator"),
    NavItem("/operator/nodes", "Nodes", "operator"),
)


def allowed(principal: Principal, need: Need, mode: str) -> bool:
    if need == "dev":
        return mode == "dev" and principal.kind == "dev"
    if need == "account":
        return principal.sees_accounts
    if need == "operator":
        return principal.operates
    return True


def when(value: dt.datetime | None) -> str:
    """A time as the console shows it: UTC, to the second."""
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def size(n: int | None) -> str:
    n = n or 0
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters["when"] = when
TEMPLATES.filters["size"] = size
TEMPLATES.filters["q"] = lambda v: quote(str(v), safe="")
TEMPLATES.globals["PREFIX"] = PREFIX


@dataclass
class Ctx:
    """One request to a console page."""

    request: Request
    console: Console
    principal: Principal
    #: The submitted form's fields (POST); an uploaded file is in ``files``.
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadFile] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    @property
    def sesame(self) -> Any:
        return self.console.sesame

    @property
    def account_id(self) -> str:
        assert self.principal.account_id is not None  # page("account") guarantees it
        return self.principal.account_id

    @property
    def region(self) -> str:
        return self.principal.region

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query_params)

    def path(self, sub: str = "") -> str:
        return PREFIX + sub

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        """``template`` inside the layout, with what every page shows (menu, notice, CSRF token)."""
        nav = [n for n in NAV if allowed(self.principal, n.need, self.console.mode)]
        here = self.request.url.path
        html = TEMPLATES.get_template(template).render(
            principal=self.principal,
            csrf=self.principal.csrf,
            mode=self.console.mode,
            nav=nav,
            current=max((n.path for n in nav if here.startswith(PREFIX + n.path)), key=len, default=""),
            notice=unquote(self.request.cookies.get(NOTICE_COOKIE, "")),
            regions=self.console.regions,
            **values,
        )
        response = HTMLResponse(html, status_code=status, headers=HEADERS)
        if NOTICE_COOKIE in self.request.cookies:
            response.delete_cookie(NOTICE_COOKIE, path=PREFIX)
        return response

    def fragment(self, template: str, **values: Any) -> HTMLResponse:
        """A piece of a page, re-fetched by console.js for live updates (no layout)."""
        html = TEMPLATES.get_template(template).render(
            principal=self.principal, csrf=self.principal.csrf, mode=self.console.mode, **values
        )
        return HTMLResponse(html, headers=HEADERS)

    def redirect(self, to: str, notice: str = "") -> Response:
        """After a form: 303 to the page that shows the result, with a one-time notice."""
        response = RedirectResponse(to, status_code=303, headers=HEADERS)
        if notice:
            response.set_cookie(
                NOTICE_COOKIE, quote(notice), path=PREFIX, httponly=True, samesite="strict", max_age=60
            )
        return response

    def error(self, status: int, message: str) -> HTMLResponse:
        return self.render("error.html", status=status, message=message)


def cookie_kwargs(request: Request, public_url: str) -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, Secure when the console is reached over TLS (directly, or behind a
    proxy that terminates it: ``public_url`` says https)."""
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https" or public_url.startswith("https://"),
        "path": PREFIX,
    }


async def read_form(request: Request) -> tuple[dict[str, str], dict[str, UploadFile]] | None:
    """The form's fields and files, or None when it is larger than a form should be."""
    declared = request.headers.get("content-length", "")
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
            return None
        form = await request.form(max_files=1, max_fields=100)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        files = {k: v for k, v in form.items() if isinstance(v, UploadFile)}
        return fields, files
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    return {
        k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
    }, {}


def page(console: Console, need: Need, handler: Handler) -> Endpoint:
    """The endpoint for ``handler``: who is asking (a new dev session on the first visit in dev mode; the
    sign-in page otherwise), whether they may, and on a POST whether the form carries their CSRF token."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        principal = await console.sessions.resolve(request.cookies.get(COOKIE, ""))
        new_session = None
        if principal is None:
            if console.mode != "dev":
                if request.method != "GET":
                    return PlainTextResponse("Your session has ended: sign in again.", 403, headers=HEADERS)
                return RedirectResponse(f"{PREFIX}/sign-in?next={quote(request.url.path)}", 303)
            # Dev mode makes an account on first sight, as its API does: the pages may write for it.
            await console.sesame.accounts.ensure(console.settings.default_account)
            principal = new_session = await console.sessions.start("dev", console.settings.default_account)
        ctx = Ctx(request, console, principal, started=started)
        if not allowed(principal, need, console.mode):
            response: Response = ctx.error(403, "This page is not open to this session.")
        elif request.method == "POST" and not await _form_ok(ctx):
            response = ctx.error(
                403, "This form has expired or did not come from this console. Reload the page."
            )
        else:
            response = await handler(ctx)
        if new_session is not None:
            response.set_cookie(
                COOKIE, new_session.token, **cookie_kwargs(request, console.settings.public_url)
            )
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    return endpoint


async def _form_ok(ctx: Ctx) -> bool:
    """The form is read (within bounds) and carries this session's CSRF token (a field, or the
    ``X-CSRF-Token`` header for console.js's requests)."""
    read = await read_form(ctx.request)
    if read is None:
        return False
    ctx.form, ctx.files = read
    given = ctx.form.get("csrf_token") or ctx.request.headers.get("x-csrf-token", "")
    return bool(given) and ctx.principal.csrf_ok(given)
