"""``/desk`` on the status server: the calls waiting for the desk and a form for its decisions.

The server stays read-only unless ``[daemon] control_token_file`` is set. Then a decision is a
POST of the form, which carries the control token the editor types in (compared in constant time,
never echoed, never logged); a request from another origin (its ``Origin`` or ``Sec-Fetch-Site``
says so) is refused before anything is read, so a page elsewhere cannot make the editor's browser
decide (and it cannot know the token). The decision is kept with the name given on the form.
"""

from __future__ import annotations

import hmac
import html
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from pollerd.desk.book import ACTIONS

Decide = Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]]
Boards = Callable[[], Awaitable[list[dict[str, Any]]]]
_FIELDS = ("source", "action", "race", "candidate", "name", "party", "note")
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
_STYLE = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}"
    "td,th{padding:.25em .7em;text-align:left;border-bottom:1px solid #ddd}label{display:block;margin:.3em 0}"
    ".bad{color:#b00020;font-weight:bold}.ok{color:#11772d;font-weight:bold}"
)


class DeskPage:
    """GET ``/desk``: what waits and the form; POST ``/desk``: one decision."""

    def __init__(self, token: str | None, decide: Decide, boards: Boards) -> None:
        self._token = token
        self._decide = decide
        self._boards = boards

    async def show(self, request: web.Request) -> web.Response:
        """The page (the form only where decisions may be made here)."""
        return _page(await self._boards(), self._token is not None, None)

    async def take(self, request: web.Request) -> web.Response:
        """One decision from the form: refused unless same-origin and with the right token."""
        if self._token is None:
            return _refused(
                403,
                "this status server is read-only: decisions are made with `pollerd calls` "
                "(set [daemon] control_token_file to allow this form)",
            )
        if not _same_origin(request):
            return _refused(403, "refused: the form was sent from another origin")
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), self._token.encode()):
            return _refused(403, "refused: the control token is missing or wrong")
        made_by = str(form.get("made_by") or "").strip()
        if not made_by:
            return _refused(400, "refused: give your name (it is kept with the decision)")
        fields = {key: str(form[key]).strip() for key in _FIELDS if isinstance(form.get(key), str)}
        answer = await self._decide(fields, made_by)
        status = 200 if answer["code"] == 0 else 422
        return _page(await self._boards(), True, (status == 200, str(answer["message"])), status)


def _same_origin(request: web.Request) -> bool:
    """Whether the browser says the request comes from this server's own page."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


def _refused(status: int, message: str) -> web.Response:
    body = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>pollerd desk</title>'
        f'<style>{_STYLE}</style></head><body><p class="bad" id="outcome">{html.escape(message)}</p>'
        '<p><a href="/desk">back to the desk</a></p></body></html>'
    )
    return web.Response(status=status, text=body, content_type="text/html", headers=_HEADERS)


def _page(
    boards: list[dict[str, Any]],
    open_for_decisions: bool,
    outcome: tuple[bool, str] | None,
    status: int = 200,
) -> web.Response:
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>pollerd desk</title>'
        f"<style>{_STYLE}</style></head><body><h1>The desk</h1>"
        '<p><a href="/status">status</a></p>'
    ]
    if outcome is not None:
        ok, message = outcome
        parts.append(f'<p class="{"ok" if ok else "bad"}" id="outcome">{html.escape(message)}</p>')
    for board in boards:
        parts += _board(board)
    if open_for_decisions:
        parts += _form([str(board["source"]) for board in boards])
    else:
        parts.append(
            '<p id="read-only">Read-only: decisions are made with <code>pollerd calls</code> '
            "(set <code>[daemon] control_token_file</code> to allow a form here).</p>"
        )
    parts.append("</body></html>")
    return web.Response(status=status, text="\n".join(parts), content_type="text/html", headers=_HEADERS)


def _board(board: dict[str, Any]) -> list[str]:
    source = html.escape(str(board["source"]))
    parts = [
        f"<h2>{source}</h2>",
        f'<table class="pending" data-source="{source}">'
        "<tr><th>race</th><th>where</th><th>AP calls it for</th><th>AP's time</th></tr>",
    ]
    for row in board["pending"]:
        parts.append(
            f'<tr data-race="{html.escape(row["race_key"])}"><td>{html.escape(row["race_key"])}</td>'
            f"<td>{html.escape(row['where'])}</td>"
            f"<td>{html.escape(str(row['candidate']))} ({html.escape(str(row['party']))}, "
            f"{html.escape(str(row['candidate_id']))})</td><td>{html.escape(str(row['at'] or ''))}</td></tr>"
        )
    if not board["pending"]:
        parts.append('<tr><td colspan="4">no AP call waits for the desk</td></tr>')
    parts.append("</table>")
    if board["desk"]:
        parts.append(
            f'<table class="desk" data-source="{source}"><tr><th>race</th><th>the desk calls it for</th></tr>'
        )
        parts += [
            f"<tr><td>{html.escape(row['race'])} {html.escape(row['where'])}</td>"
            f"<td>{html.escape(str(row['candidate']))} ({html.escape(str(row['party']))})</td></tr>"
            for row in board["desk"]
        ]
        parts.append("</table>")
    for row in board["conflicts"]:
        parts.append(
            f'<p class="bad">CONFLICT in {html.escape(row["race_key"])} {html.escape(row["where"])}: '
            f"AP {html.escape(str(row['ap']))}, the desk {html.escape(str(row['desk']))}</p>"
        )
    return parts


def _form(sources: list[str]) -> list[str]:
    options = "".join(f"<option>{html.escape(s)}</option>" for s in sources)
    actions = "".join(f"<option>{a}</option>" for a in ACTIONS)
    return [
        '<h2>Decide</h2><form method="post" action="/desk" id="decide">',
        f'<label>source <select name="source">{options}</select></label>',
        f'<label>decision <select name="action">{actions}</select></label>',
        '<label>race <input name="race" placeholder="PA:1009:G" required></label>',
        '<label>candidate (AP candidate ID; call, override) <input name="candidate"></label>',
        '<label>name (override) <input name="name"></label>',
        '<label>party (override) <input name="party"></label>',
        '<label>note <input name="note"></label>',
        '<label>your name <input name="made_by" required></label>',
        '<label>control token <input name="token" type="password" autocomplete="off" required></label>',
        '<button type="submit">decide</button></form>',
    ]
