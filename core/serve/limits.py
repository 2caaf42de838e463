"""The server's edges: what a request may cost before the app sees it.

- The body: counted on the bytes actually received, chunked or not, and refused (413) the
  moment it passes the limit, so nothing past it is read or spooled (the limit used to be
  checked against Content-Length alone: a chunked 200 MB upload was spooled to disk, then
  refused; 300 form fields of 1 MB took 300 MB of memory and got a 200).
- A slow body: each read of it waits at most `body_timeout` seconds (408 after).
- An answer given before the whole body arrived (a form refused for too many fields) closes the
  connection, so the rest of the body is not read either (uvicorn drained it: 300 MB of fields
  refused at the first one were still read to the end).
- The Host header, when serving without a token: an IP address, or one of the names given
  (localhost's by default), so a web page in the person's browser cannot reach the server by
  DNS rebinding (which needs a name the attacker's DNS answers; an address cannot be rebound).
- A connection that never finishes its request line and headers is closed
  (`header_timeout_protocol`); uvicorn times out only idle keep-alive connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
BODY_TIMEOUT_S = 30.0
HEADER_TIMEOUT_S = 20.0


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def host_name(header: str) -> str:
    """`Host: name:port` without the port (an IPv6 address keeps its brackets), lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def answered(host: str, names: frozenset[str]) -> bool:
    """Whether a request naming `host` is answered without a token: a listed name, or any IP address."""
    import ipaddress

    if host in names:
        return True
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
    except ValueError:
        return False
    return True


class RequestLimits:
    """ASGI middleware, outermost: the host check, then the body's size and pace."""

    def __init__(self, app: ASGIApp, max_body: int, limit_words: str, hosts: Collection[str] | None = LOCAL_NAMES,
                 body_timeout: float = BODY_TIMEOUT_S) -> None:
        self.app = app
        self.max_body = max_body
        self.limit_words = limit_words  # "the limit is 20 MB"
        self.hosts = frozenset(h.lower() for h in hosts) if hosts is not None else None
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.hosts is not None and not answered(host_name(headers.get("host", "")), self.hosts):
            await JSONResponse({"error": f"without a token this server answers only to its IP addresses and "
                                         f"{', '.join(sorted(self.hosts))} (Host was {headers.get('host', 'missing')!r}); "
                                         f"start it with a token, or with --allow-host NAME for the name clients "
                                         f"use"}, 421)(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await self._refuse(scope, receive, send, _Refused(413, f"upload too large: {self.limit_words}"))
            return
        state: dict[str, Any] = {"read": 0, "done": False, "refused": None, "started": False}

        async def limited_receive() -> Message:
            if state["done"]:  # the body is in: later reads wait for a disconnect, as long as the work takes
                return await receive()
            try:
                async with asyncio.timeout(self.body_timeout):  # no task made, unlike wait_for
                    message = await receive()
            except TimeoutError:
                state["refused"] = _Refused(408, f"the upload stalled: nothing arrived for {self.body_timeout:g} s")
                raise state["refused"] from None
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                state["done"] = not message.get("more_body", False)
                if state["read"] > self.max_body:
                    state["refused"] = _Refused(413, f"upload too large: {self.limit_words}")
                    raise state["refused"]
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"] is not None:
                return  # the app's answer to a body cut short: ours is sent instead
            if message["type"] == "http.response.start":
                state["started"] = True
                if not state["done"]:  # answered before the body was in (a form refused): the rest is not read
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if state["refused"] is None:
                raise
        if state["refused"] is not None and not state["started"]:
            await self._refuse(scope, receive, send, state["refused"])

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, refused: _Refused) -> None:
        # Connection: close, so the rest of a body nobody will read is not waited for
        response = JSONResponse({"error": refused.message}, refused.status, headers={"Connection": "close"})
        await response(scope, receive, send)


def header_timeout_protocol(base: type[asyncio.Protocol], timeout: float = HEADER_TIMEOUT_S) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class, closing a connection that neither starts a request nor has
    one being served for `timeout` seconds (a client that connects and sends nothing, or
    half a header line, used to hold its connection for ever)."""

    class HeaderTimeout(base):  # type: ignore[valid-type, misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._seen_cycle: object = None
            self._watch = asyncio.get_running_loop().call_later(timeout, self._check_progress)

        def _check_progress(self) -> None:
            transport = getattr(self, "transport", None)
            if transport is None or transport.is_closing():
                return
            cycle = getattr(self, "cycle", None)
            serving = cycle is not None and not getattr(cycle, "response_complete", True)
            if not serving and cycle is self._seen_cycle:  # no new request since the last look
                transport.close()
                return
            self._seen_cycle = cycle
            self._watch = asyncio.get_running_loop().call_later(timeout, self._check_progress)

        def connection_lost(self, exc: Exception | None) -> None:
            self._watch.cancel()
            super().connection_lost(exc)

    return HeaderTimeout
