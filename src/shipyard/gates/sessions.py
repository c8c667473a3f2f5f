"""Cookie jars for the runtime checks: one HTTP client per ``session`` name.

* HTTP checks without ``session`` (or with ``session: default``) share the default jar: cookies
  an answer sets are sent with the later requests (a login carries over).
* ``session: none``: the check neither sends nor stores cookies.
* Every other name is a jar of its own, so two users can be logged in side by side.
* A new app (``fresh_app: true``) gets empty jars.
* A UI flow with ``session: NAME`` starts with that jar's cookies; what the browser sets is not
  written back.
"""

from __future__ import annotations

from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

from shipyard.spec import DEFAULT_SESSION, NO_SESSION

if TYPE_CHECKING:
    import httpx


class _NoCookies(DefaultCookiePolicy):
    """Refuses to store any cookie and to send any: ``session: none``."""

    def set_ok(self, cookie: Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Cookie, request: Any) -> bool:
        return False


class Jars:
    """The named HTTP clients against one running app; ``close`` closes them all."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._clients: dict[str, httpx.Client] = {}

    def client(self, session: str | None) -> httpx.Client:
        import httpx

        name = session or DEFAULT_SESSION
        if name not in self._clients:
            jar = CookieJar(policy=_NoCookies()) if name == NO_SESSION else CookieJar()
            self._clients[name] = httpx.Client(base_url=self.base_url, trust_env=False, cookies=jar)
        return self._clients[name]

    def browser_cookies(self, session: str | None) -> list[dict[str, Any]]:
        """The jar's cookies in Playwright's ``add_cookies`` form; none for ``none``."""
        name = session or DEFAULT_SESSION
        if name == NO_SESSION or name not in self._clients:
            return []
        return [_for_browser(c) for c in self._clients[name].cookies.jar]

    def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


def _for_browser(cookie: Cookie) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": cookie.name,
        "value": cookie.value or "",
        "domain": cookie.domain,
        "path": cookie.path or "/",
        "secure": bool(cookie.secure),
        "httpOnly": _attr(cookie, "HttpOnly") is not None,
    }
    if cookie.expires is not None:
        out["expires"] = float(cookie.expires)
    same_site = _attr(cookie, "SameSite")
    if isinstance(same_site, str) and same_site.capitalize() in ("Strict", "Lax", "None"):
        out["sameSite"] = same_site.capitalize()
    return out


def _attr(cookie: Cookie, name: str) -> Any:
    """A Set-Cookie attribute the standard library keeps as it was spelled (``HttpOnly`` has
    no value: ``None`` then means absent, ``""`` present)."""
    for spelling in (name, name.lower()):
        if cookie.has_nonstandard_attr(spelling):
            return cookie.get_nonstandard_attr(spelling) or ""
    return None
