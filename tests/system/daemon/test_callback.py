"""``--callback module:Class`` loads the user's Callback into the daemon, after the built-in mode."""

from __future__ import annotations

from .twistd_harness import Daemons, all_connected, clients


def test_user_callback_sees_each_message_after_the_relay(daemons: Daemons) -> None:
    # The asyncio reactor too: the plugin and the tap module must not have installed a reactor of their own.
    arguments = ["--interface", "127.0.0.1", "--port", "0", "--callback", "leads_probe:Probe"]
    daemon = daemons.start(*arguments, twistd_options=["--reactor=asyncio"])
    with clients(daemon.port, 2) as (a, b):
        all_connected([a, b])
        assert b.receive(1) == [b"seen:hello"]  # b's hello, answered by the probe to b alone

        a.send(b"one", b"two")
        assert a.receive(2) == [b"seen:one", b"seen:two"]
        assert b.receive(2) == [b"one", b"two"]  # the relay still ran
    daemon.terminate()
    assert "AsyncioSelectorReactor" in daemon.log()
