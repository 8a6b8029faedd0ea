"""A client that stops reading while the server broadcasts 200 MB: memory stays bounded, the slow-peer
policy acts on that client alone, and the clients that read get every message in order."""

from __future__ import annotations

import pytest
import pytest_twisted

from .harness import MemoryWatch, SequenceReader, StalledPeer

MB = 1_000_000
SIZE = 100_000
TOTAL = 2_000  # 2,000 x 100 kB = 200 MB
#: Broadcast in rounds that the reading clients take in before the next one, as a paced sender would: each
#: round is well under the 4 MiB high-water mark, so a client that does read is never mistaken for a slow one.
PER_ROUND = 20
#: What the server may add to its RSS for all this: one stalled peer's high-water mark (4 MiB), the kernel
#: and transport buffers of the readers (one round each), and the send queue. 200 MB buffered would fail it.
RSS_BOUND_MB = 30


async def broadcast_in_rounds(server, readers, start: int, count: int) -> None:
    for first in range(start, start + count, PER_ROUND):
        await server.request(f"broadcast {first} {PER_ROUND} {SIZE}", "broadcast-done")
        for reader in readers:
            await reader.when_next(first + PER_ROUND)


@pytest.mark.parametrize("policy", ["disconnect", "drop"])
@pytest_twisted.ensureDeferred
async def test_a_stalled_reader_during_a_200_mb_broadcast(processes, net, policy):
    server = await processes.server(options={"slow_policy": policy})
    readers = [await net.peer(SequenceReader(SIZE), server.port) for _ in range(2)]
    stalled = await net.peer(StalledPeer(SIZE), server.port)
    assert (await server.wait("connections", 3))["value"] == 3
    memory = MemoryWatch(server.pid)

    await broadcast_in_rounds(server, readers, 0, TOTAL)
    memory.finish()
    stats = await server.stats()
    print(f"200 MB broadcast, slow_policy={policy}: {memory}; stats {stats}")

    for reader in readers:
        assert reader.errors == [] and reader.gaps == 0, reader.describe()
        assert reader.count == TOTAL and not reader.is_lost, reader.describe()
    assert memory.growth < RSS_BOUND_MB, f"server RSS grew by {memory.growth:.1f} MB: {memory}"
    slow = server.fails("SlowPeer")
    assert len(slow) == 1, server.describe()

    if policy == "disconnect":
        # A peer that does not read cannot notice the reset either: it reads again to find the link gone.
        stalled.read_again()
        await stalled.when_lost()
        assert stalled.errors == [] and stalled.count < TOTAL, stalled.describe()
        assert "disconnecting" in slow[0]["message"]
        assert stats["connections"] == 2 and stats["counts"]["disconnect"] == 1, stats
        assert stats["repeated_disconnects"] == [], stats
    else:
        assert "dropping" in slow[0]["message"]
        assert stats["connections"] == 3, stats
        [dropped] = stats["dropped"].values()
        assert 0 < dropped < TOTAL, stats
        # What was not dropped was buffered whole: reading again, the peer gets exactly those messages, intact.
        stalled.read_again()
        await stalled.when(lambda: stalled.count >= TOTAL - dropped or stalled.is_lost, "the backlog", 30)
        assert stalled.errors == [] and not stalled.is_lost, stalled.describe()
        assert stalled.count == TOTAL - dropped, stalled.describe()
        # Caught up, it gets new broadcasts again, as the readers do.
        await broadcast_in_rounds(server, [*readers, stalled], TOTAL, PER_ROUND)
        assert stalled.next == TOTAL + PER_ROUND and stalled.errors == [], stalled.describe()
        assert all(r.count == TOTAL + PER_ROUND and r.gaps == 0 for r in readers)
        assert len(server.fails("SlowPeer")) == 1
