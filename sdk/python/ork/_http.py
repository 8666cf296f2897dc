"""``ctx.http``: HTTP requests that the ork host makes on the task's behalf.

The sandbox has no sockets. A task asks the host (operation
``http.request``), which makes the request only to hosts that ork.yaml
grants the task's executor (``sandbox.allowed_hosts``), adds the headers
attached to the grant (e.g. an ``Authorization`` built from a secret the
guest never sees), follows redirects to granted hosts, and caps sizes and
durations.
"""

import base64
import json as _json
import math
from collections.abc import Mapping

from . import _abi
from ._errors import HttpError, a_type

_MISSING = object()


class Headers(Mapping):
    """HTTP headers: a read-only mapping whose lookups ignore case
    (``headers["content-type"]``, ``headers.get("Content-Type")``,
    ``"ETAG" in headers``). Iterating gives the names as the server sent
    them."""

    __slots__ = ("_items",)

    def __init__(self, headers=None) -> None:
        items = {}
        for name, value in (headers or {}).items():
            items[str(name).lower()] = (name, value)
        self._items = items

    def __getitem__(self, name):
        if not isinstance(name, str):
            raise KeyError(name)
        return self._items[name.lower()][1]

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self):
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        try:
            theirs = {str(k).lower(): v for k, v in other.items()}
        except Exception:
            return False
        return theirs == {k: v for k, (_, v) in self._items.items()}

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


class HttpResponse:
    """The response to ``ctx.http.request`` (any status: only a request the
    host could not make raises).

    ``status`` is the status code, ``headers`` a case-insensitive mapping,
    ``url`` the final URL (after redirects), ``content`` the body as bytes
    and ``text`` as str (decoded as UTF-8, invalid bytes replaced).
    """

    __slots__ = ("status", "headers", "url", "method", "_text", "_content")

    def __init__(self, status: int, headers=None, url: str = "", body=None, method: str = "GET") -> None:
        self.status = status
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.url = url
        self.method = method
        if isinstance(body, str):
            self._text, self._content = body, None
        else:
            self._text, self._content = None, bytes(body or b"")

    @classmethod
    def _from_host(cls, resp, method: str) -> "HttpResponse":
        """The response of ``http.request`` as the host sent it."""
        ok = (
            isinstance(resp, dict)
            and isinstance(resp.get("status"), int)
            and isinstance(resp.get("headers") or {}, dict)
            and isinstance(resp.get("url", ""), str)
        )
        body = resp.get("body") if ok else None
        b64 = resp.get("body_base64") if ok else None
        if not ok or not isinstance(body, (str, type(None))) or not isinstance(b64, (str, type(None))):
            raise HttpError(_abi.OP_HTTP_REQUEST, f"unexpected response from the host: {resp!r:.200}")
        if body is None and b64 is not None:
            try:
                body = base64.b64decode(b64)
            except ValueError as e:
                raise HttpError(_abi.OP_HTTP_REQUEST, f"the host's body_base64 does not decode: {e}") from None
        return cls(resp["status"], resp.get("headers") or {}, resp.get("url") or "", body, method)

    @property
    def content(self) -> bytes:
        """The body, as bytes."""
        if self._content is None:
            self._content = self._text.encode("utf-8")
        return self._content

    @property
    def text(self) -> str:
        """The body, as str: decoded as UTF-8, invalid bytes replaced by
        U+FFFD."""
        if self._text is None:
            self._text = self._content.decode("utf-8", errors="replace")
        return self._text

    def json(self, **kwargs):
        """The body parsed as JSON (keyword arguments go to ``json.loads``);
        raises ``json.JSONDecodeError`` (a ``ValueError``) naming the URL when
        it is not JSON."""
        try:
            return _json.loads(self.text, **kwargs)
        except _json.JSONDecodeError as e:
            raise _json.JSONDecodeError(
                f"the response from {self.url} (HTTP {self.status}) is not JSON: {e.msg}", e.doc, e.pos
            ) from None

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    @property
    def reason(self) -> str:
        """The status's standard phrase (``Not Found``), or ``""``."""
        try:
            import http

            return http.HTTPStatus(self.status).phrase
        except (ImportError, ValueError):
            return ""

    def raise_for_status(self) -> "HttpResponse":
        """Raises :class:`ork.HttpError` (with ``response`` set) unless the
        status is 2xx; returns the response, so calls chain:
        ``ctx.http.get(url).raise_for_status().json()``."""
        if self.ok:
            return self
        reason = f" {self.reason}" if self.reason else ""
        message = f"{self.method} {self.url}: HTTP {self.status}{reason}"
        snippet = self.text.strip()
        if snippet:
            message += f": {snippet[:200]}" + ("..." if len(snippet) > 200 else "")
        raise HttpError(_abi.OP_HTTP_REQUEST, message, response=self)

    def __repr__(self) -> str:
        return f"<ork.HttpResponse [{self.status}] {self.method} {self.url}>"


class Http:
    """HTTP requests made by the ork host; use ``ctx.http``.

    Only hosts listed under the executor's ``sandbox.allowed_hosts`` in
    ork.yaml can be reached; any other request raises :class:`ork.HttpError`
    with a message naming the host and that setting.
    """

    __slots__ = ()

    def request(self, method: str, url: str, headers=None, body=None, timeout=None, *, json=_MISSING) -> HttpResponse:
        """Makes one request and returns its :class:`HttpResponse`, whatever
        its status (see ``raise_for_status``).

        ``headers`` maps names to str values. ``body`` is a str (sent as
        text), bytes (sent as they are), or a dict or list (sent as JSON, with
        ``Content-Type: application/json`` unless ``headers`` has one);
        ``json=`` sends any JSON value that way. ``timeout`` is in seconds
        (a number or a ``datetime.timedelta``); the host caps it, and uses
        its own default when none is given.

        Raises :class:`ork.HttpError` when the host refuses or cannot make
        the request (a host not granted, a refused address, a timeout, a
        body too large); ``TypeError``/``ValueError`` for arguments that
        cannot be sent.
        """
        if not isinstance(method, str) or not method.strip():
            raise TypeError(f"http method must be a non-empty str such as 'GET', not {method!r:.60}")
        if not isinstance(url, str):
            raise TypeError(f"http url must be a str, not {a_type(url)}")
        method = method.strip().upper()
        req: "dict[str, object]" = {"method": method, "url": url}
        hdrs = _headers(headers)
        if json is not _MISSING:
            if body is not None:
                raise TypeError("give body= or json=, not both")
            req["body"] = _json_body(json, hdrs)
        elif body is None:
            pass
        elif isinstance(body, str):
            req["body"] = body
        elif isinstance(body, (bytes, bytearray, memoryview)):
            req["body_base64"] = base64.b64encode(bytes(body)).decode("ascii")
        elif isinstance(body, (dict, list, tuple)):
            req["body"] = _json_body(body, hdrs)
        else:
            raise TypeError(f"http body must be a str, bytes, or a dict or list (sent as JSON), not {a_type(body)}")
        if hdrs:
            req["headers"] = hdrs
        if timeout is not None:
            req["timeout_ms"] = _timeout_ms(timeout)
        resp = _abi.invoke(_abi.OP_HTTP_REQUEST, req, error=HttpError)
        return HttpResponse._from_host(resp, method)

    def get(self, url: str, **kwargs) -> HttpResponse:
        """``request("GET", url, **kwargs)``."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> HttpResponse:
        """``request("POST", url, **kwargs)``."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs) -> HttpResponse:
        """``request("PUT", url, **kwargs)``."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs) -> HttpResponse:
        """``request("PATCH", url, **kwargs)``."""
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs) -> HttpResponse:
        """``request("DELETE", url, **kwargs)``."""
        return self.request("DELETE", url, **kwargs)

    def __repr__(self) -> str:
        return "<ork.Http>"


def _headers(headers) -> "dict[str, str]":
    if headers is None:
        return {}
    try:
        items = list(headers.items())
    except AttributeError:
        raise TypeError(f"http headers must be a dict of str to str, not {a_type(headers)}") from None
    out = {}
    for name, value in items:
        if not isinstance(name, str) or not name:
            raise TypeError(f"http header names must be non-empty str, not {name!r:.60}")
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = str(value)
        else:
            raise TypeError(f"http header {name!r} must be a str, not {a_type(value)}")
    return out


def _json_body(value, headers: "dict[str, str]") -> str:
    text = _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    return text


def _timeout_ms(timeout) -> int:
    if hasattr(timeout, "total_seconds") and not isinstance(timeout, (int, float)):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(f"http timeout must be a number of seconds or a timedelta, not {a_type(timeout)}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"http timeout must be a positive number of seconds, not {timeout!r}")
    return max(1, math.ceil(seconds * 1000))
