"""The web side of the WebSocket endpoint: the page at ``/``, the stream at ``/ws``, the Origin check, and the
per-connection wrapper that meters frames and carries the link's writes."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable
from urllib.parse import urlsplit

from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from twisted.web.websocket import WebSocketResource

from leads_twisted.comm import ServerHub
from leads_twisted.websocket.channel import MeteredChannel, WebSocketSite
from leads_twisted.websocket.frames import FrameCache
from leads_twisted.websocket.link import WebSocketLink

#: Where the stream is served; the page is at ``/``.
STREAM_PATH = b"ws"

#: The page's files, served from the package (the track has no internet): name, content type.
STATIC_FILES: dict[str, bytes] = {
    "index.html": b"text/html; charset=utf-8",
    "app.js": b"text/javascript; charset=utf-8",
    "style.css": b"text/css; charset=utf-8",
}


class OriginCheck:
    """Which origins may open the stream: those listed, ``*`` for any, and by default the page's own.

    A request without an ``Origin`` header is not from a browser page (a script, a tool): it is let in, since
    the check exists to keep other sites' pages from using a visitor's browser as a client.
    """

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self._allowed = {origin.rstrip("/").lower() for origin in allowed}

    def admits(self, request: Request) -> bool:
        given, host = request.getHeader(b"origin"), request.getHeader(b"host")
        if given is None:
            return True
        origin = given.decode("latin-1").rstrip("/").lower()
        if "*" in self._allowed or origin in self._allowed:
            return True
        if host is None:
            return False
        own = f"{'https' if request.isSecure() else 'http'}://{host.decode('latin-1')}".lower()
        return origin == own and bool(urlsplit(origin).netloc)


class StreamResource(Resource):
    """``/ws``: refuses foreign origins with 403, then hands the upgrade to Twisted's WebSocket resource."""

    isLeaf = True

    def __init__(self, server: ServerHub, origins: OriginCheck) -> None:
        super().__init__()
        self._server = server
        self._in_reactor_thread = server.in_reactor_thread
        self._batch = server.write_batch
        self._origins = origins
        self._cache = FrameCache()
        self._upgrade = WebSocketResource(self)

    def render_GET(self, request: Request) -> bytes | int:
        if not self._origins.admits(request):
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            origin = (request.getHeader(b"origin") or b"").decode("latin-1")
            return f"origin {origin} may not open this stream; add it with --websocket-origin\n".encode()
        return self._upgrade.render_GET(request)

    def buildProtocol(self, request: Request) -> WebSocketLink:
        """Twisted's resource asks for the protocol of an accepted upgrade: a link of the server."""
        channel = request.channel.transport
        assert isinstance(channel, MeteredChannel), "the stream is served through WebSocketSite only"
        return WebSocketLink(self._server, request, channel, self._cache, self._batch, self._in_reactor_thread)


class StaticFile(Resource):
    """One of the page's files, read once from the package."""

    isLeaf = True

    def __init__(self, name: str) -> None:
        super().__init__()
        self._body = importlib.resources.files("leads_twisted.websocket").joinpath("static", name).read_bytes()
        self._type = STATIC_FILES[name]

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", self._type)
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-content-type-options", b"nosniff")
        return self._body


class Root(Resource):
    """``/`` is the page; its files and the stream hang below it."""

    def __init__(self, server: ServerHub, origins: OriginCheck, page: bool = True) -> None:
        super().__init__()
        self.putChild(STREAM_PATH, StreamResource(server, origins))
        self._page = page
        if page:
            self._index = StaticFile("index.html")
            for name in STATIC_FILES:
                self.putChild(name.encode(), StaticFile(name))

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"" and self._page:
            return self._index
        child: Resource = super().getChild(path, request)
        return child


def make_site(server: ServerHub, origins: Iterable[str] = (), page: bool = True) -> WebSocketSite:
    """The factory to listen with: the page (unless ``page`` is False) and the stream of ``server``, on its
    reactor."""
    site = Site(Root(server, OriginCheck(origins), page))
    site.displayTracebacks = False
    return WebSocketSite(site, server.reactor)
