"""The seam a custom transport uses (``attach``, ``feed``, ``detach`` and the ``ConnectionBase`` defaults), with
the smallest possible transport: a list of the bytes put on the wire. In memory, no reactor needed."""

from __future__ import annotations

import pytest
from support_net import ListLink

from leads_twisted.comm import MessageTooLong, Server
from leads_twisted.testing import MemoryRunner, Recorder


def started_server(**options) -> tuple[Server, Recorder]:
    seen = Recorder()
    server = Server(0, seen, runner=MemoryRunner(), **options)
    assert server.start_in_reactor().called
    return server, seen


def test_attach_feed_reply_and_the_peer_saying_goodbye():
    server, seen = started_server()
    link = ListLink(server)
    server.attach(link)
    server.feed(link, b"one;tw")
    server.feed(link, b"o;")
    assert seen.received == [b"one", b"two"] and seen.senders == [link, link]
    server.broadcast(b"all")
    link.send(b"you")
    assert link.frames == [b"all;", b"you;"]
    server.feed(link, b"disconnect;")
    assert link.frames[-1] == b"disconnect;"
    assert seen.kinds() == ["initialize", "connect", "receive", "receive", "disconnect"]
    server.detach(link)  # reported again by the transport: ignored
    server.feed(link, b"late;")  # after the end: ignored
    assert seen.kinds().count("disconnect") == 1 and server.num_connections() == 0


def test_length_framing_reaches_a_custom_link_too():
    server, seen = started_server(framing="length")
    link = ListLink(server)
    server.attach(link)
    server.broadcast(b"a;b")
    server.broadcast(b"")
    assert link.frames == [b"\x00\x00\x00\x03a;b", b"\x00\x00\x00\x00"]
    server.feed(link, b"\x00\x00\x00\x02hi")
    assert seen.received == [b"hi"]


def test_a_peer_breaking_the_framing_is_reported_and_dropped():
    server, seen = started_server(max_message=4)
    link = ListLink(server)
    server.attach(link)
    server.feed(link, b"ok;")
    server.feed(link, b"toolong")
    assert seen.received == [b"ok"]
    [error] = seen.failures
    assert isinstance(error, MessageTooLong)
    assert link.ended and seen.kinds()[-1] == "disconnect"
    server.feed(link, b"more;")
    assert seen.received == [b"ok"]


def test_misuse_is_refused():
    seen = Recorder()
    server = Server(0, seen, runner=MemoryRunner())
    with pytest.raises(RuntimeError, match="once started"):
        server.attach(ListLink(server))
    server.start_in_reactor()
    with pytest.raises(RuntimeError, match="never attached"):
        server.feed(ListLink(server), b"x;")
    server.close()
    with pytest.raises(RuntimeError, match="once started"):
        server.attach(ListLink(server))


def test_closing_the_server_closes_custom_links():
    server, seen = started_server()
    links = [ListLink(server) for _ in range(3)]
    for link in links:
        server.attach(link)
    finished = server.close_in_reactor()
    assert finished.called, "every link reported its end, so the server is done"
    assert all(link.frames == [b"disconnect;"] for link in links)
    assert seen.disconnections == links
