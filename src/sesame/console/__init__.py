"""The web console (``/console/``): server-rendered pages over the same domain services the API uses.
It adds no business logic of its own: every action a page offers is one a domain service already has.

Modules, one per page group: ``inbox`` (dev mode's captured mail), the account pages (``dashboard``,
``identities``, ``configuration_sets``, ``email_templates``, ``messages``, ``suppression``,
``receiving``, ``contact_lists``, ``tenants``), ``operator``; ``sessions`` (who is signed in) and
``web`` (what every page shares).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from sesame.console import (
    configuration_sets,
    contact_lists,
    dashboard,
    email_templates,
    identities,
    inbox,
    messages,
    operator,
    receiving,
    suppression,
    tenants,
)
from sesame.console.sessions import COOKIE, Sessions
from sesame.console.web import HEADERS, PREFIX, TEMPLATES, Ctx, cookie_kwargs, page, read_form
from sesame.domain.secrets import admin_token

if TYPE_CHECKING:
    from sesame.runtime import Sesame

PAGES = (
    inbox,
    dashboard,
    identities,
    configuration_sets,
    email_templates,
    messages,
    suppression,
    receiving,
    contact_lists,
    tenants,
    operator,
)


class Console:
    def __init__(self, sesame: Sesame) -> None:
        self.sesame = sesame
        self.settings = settings = sesame.settings
        self.mode = settings.mode
        self.sessions = Sessions(sesame.db, settings, sesame.accounts, admin_token(settings.data_dir))
        self.regions = list(dict.fromkeys([settings.default_region, *settings.regions]))

    def routes(self) -> list[BaseRoute]:
        return [
            Route(PREFIX, self.home, methods=["GET"]),
            Route(f"{PREFIX}/", self.home, methods=["GET"]),
            Route(f"{PREFIX}/sign-in", self.sign_in, methods=["GET", "POST"]),
            Route(f"{PREFIX}/sign-out", page(self, "any", self.sign_out), methods=["POST"]),
            Route(f"{PREFIX}/switch", page(self, "any", self.switch), methods=["POST"]),
            Mount(f"{PREFIX}/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
            *(route for module in PAGES for route in module.routes(self)),
            # Under /console/ nothing falls through to the AWS endpoint: a wrong link is a page's 404.
            Route(f"{PREFIX}/{{rest:path}}", page(self, "any", self.not_found), methods=["GET", "POST"]),
        ]

    async def not_found(self, ctx: Ctx) -> Response:
        return ctx.error(404, "There is no such page.")

    async def home(self, request: Request) -> Response:
        """The first page of each kind of session: the inbox in dev mode, the dashboard for an account,
        the accounts for an operator; the sign-in page for no session."""
        principal = await self.sessions.resolve(request.cookies.get(COOKIE, ""))
        if self.mode == "dev" and (principal is None or principal.kind == "dev"):
            target = "/inbox"
        elif principal is None:
            target = "/sign-in"
        elif principal.kind == "operator":
            target = "/operator/accounts"
        else:
            target = "/dashboard"
        return RedirectResponse(PREFIX + target, status_code=303)

    async def sign_in(self, request: Request) -> Response:
        """Sign in with an access key id and secret (an account's pages) or the admin token (the operator
        pages). No session exists yet, so the form's guard is SameSite and the secret itself."""
        error, status = "", 200
        if request.method == "POST":
            read = await read_form(request)
            form = read[0] if read else {}
            if form.get("admin_token"):
                principal = await self.sessions.sign_in_operator(form["admin_token"])
            else:
                principal = await self.sessions.sign_in_account(
                    form.get("access_key_id", ""), form.get("secret_access_key", "")
                )
            if principal is not None:
                target = request.query_params.get("next", "")
                if not target.startswith(PREFIX + "/") or target.startswith("//"):
                    target = PREFIX + "/"
                response = RedirectResponse(target, status_code=303)
                response.set_cookie(
                    COOKIE, principal.token, max_age=int(self.sessions.lifetime.total_seconds()),
                    **cookie_kwargs(request, self.settings.public_url),
                )  # fmt: skip
                return response
            error, status = "The access key id, secret or admin token is not right.", 401
        html = TEMPLATES.get_template("sign_in.html").render(error=error, mode=self.mode)
        return Response(html, status_code=status, media_type="text/html", headers=HEADERS)

    async def sign_out(self, ctx: Ctx) -> Response:
        await self.sessions.end(ctx.principal.token)
        response = RedirectResponse(PREFIX + "/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    async def switch(self, ctx: Ctx) -> Response:
        """Dev mode: show another account's pages; any session: another region's."""
        account_id = ctx.form.get("account_id", "").strip()
        if account_id and not (account_id.isdigit() and len(account_id) == 12):
            return ctx.redirect(PREFIX + "/", "An account id is 12 digits.")
        region = ctx.form.get("region", "").strip()
        if region and region not in self.regions and self.settings.regions:
            return ctx.redirect(PREFIX + "/", f"{region} is not a region this server serves.")
        if account_id and ctx.principal.kind == "dev":
            await self.sesame.accounts.ensure(account_id)
        await self.sessions.choose(ctx.principal, account_id or None, region or None)
        back = ctx.form.get("back", "")
        return ctx.redirect(back if back.startswith(PREFIX + "/") else PREFIX + "/")


def routes(sesame: Sesame) -> list[BaseRoute]:
    if not sesame.settings.console.enabled:
        return []
    return Console(sesame).routes()
