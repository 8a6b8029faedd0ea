"""``Service.drop`` and ``Service.policy``: the seam a transport uses to end one of its links for a rule it
enforces itself, and to read the limits it must enforce. In memory."""

from __future__ import annotations

from support_net import ListLink

from leads_twisted.comm import LinkEnd, Observer, Server, SlowPeer
from leads_twisted.testing import MemoryRunner, Recorder


class Ends(Observer):
    def __init__(self) -> None:
        self.ends: list[LinkEnd] = []

    def link_down(self, service, connection, reason) -> None:
        self.ends.append(reason)


def test_drop_reports_closes_and_forgets_one_link_alone():
    seen, ends = Recorder(), Ends()
    server = Server(0, seen, runner=MemoryRunner(), max_buffered=123, slow_policy="drop")
    server.add_observer(ends)
    server.start_in_reactor()
    bad, good = ListLink(server), ListLink(server)
    server.attach(bad)
    server.attach(good)
    error = SlowPeer("too slow")
    server.drop(bad, error, LinkEnd.SLOW)
    assert seen.failures == [error]
    assert bad.ended and bad.frames == [b"disconnect;"]
    assert ends.ends == [LinkEnd.SLOW]
    assert server.connections() == [good]
    server.drop(bad, error)  # already ended: reported, nothing else
    assert ends.ends == [LinkEnd.SLOW] and server.num_connections() == 1
    assert server.policy.max_buffered == 123 and server.policy.slow_policy == "drop"
