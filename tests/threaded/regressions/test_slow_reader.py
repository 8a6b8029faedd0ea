"""Bug 2: a client whose own thread sends faster than the server reads is slowed down, not cut off as a slow
peer: every message arrives whole and in order, and the link stays up.

1000 messages of 64 KiB (65 MB) with the default options: the outbox batch drained as the link fills (up to
``max_queued``) must not count against ``max_buffered``; with 300 the kernel's buffers can hide the bug."""

from __future__ import annotations

from support import run_python

from threaded.api.prelude import script

COUNT = 1000
SIZE = 64 * 1024


def test_a_thread_sending_64k_messages_to_a_slow_reader_is_slowed_down_not_disconnected():
    code = script(
        """
        watchdog(40)
        import socket
        from leads_twisted.comm import create_client, start_client

        COUNT, SIZE = int(sys.argv[1]), int(sys.argv[2])
        messages = [b"%08d:" % i + bytes([97 + i % 26]) * (SIZE - 9) for i in range(COUNT)]
        expected = b"".join(msg + b";" for msg in messages)

        # The slow server: a raw socket that takes at most 64 KiB every 2 ms (bounded: 30 s at most).
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(10)
        got = bytearray()
        reader_state = {"eof": False, "error": None}
        all_read = threading.Event()

        def read_slowly():
            try:
                peer, _ = listener.accept()
                peer.settimeout(10)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    chunk = peer.recv(64 * 1024)
                    if not chunk:
                        reader_state["eof"] = True
                        break
                    got.extend(chunk)
                    if len(got) >= len(expected):
                        all_read.set()
                    time.sleep(0.002)
                peer.close()
            except Exception as error:
                reader_state["error"] = repr(error)
            finally:
                all_read.set()

        reader = threading.Thread(target=read_slowly, daemon=True)
        reader.start()

        events = Events()
        client = start_client("127.0.0.1", create_client(listener.getsockname()[1], events), True)
        send_error = None
        started = time.monotonic()
        try:
            for msg in messages:
                client.send(msg)
        except Exception as error:
            send_error = repr(error)
        sent_seconds = time.monotonic() - started
        all_read.wait(30)
        link = client.connection()
        connected_at_end = link is not None and not link.closed()
        kinds_before_close = events.kinds()
        failures = [type(error).__name__ + ": " + str(error)[:120] for error in events.of("fail")]
        client.close()
        reader.join(10)

        data = bytes(got)
        body = data[: len(expected)]
        intact = body == expected
        first_difference = None if intact else next((i for i, (a, b) in enumerate(zip(body, expected)) if a != b), -1)
        result(
            send_error=send_error,
            sent_seconds=sent_seconds,
            failures=failures,
            kinds=kinds_before_close,
            connected_at_end=connected_at_end,
            received_bytes=len(data),
            expected_bytes=len(expected),
            intact=intact,
            first_difference=first_difference,
            messages_whole=body.count(b";"),
            after=data[len(expected):][:40].decode(errors="replace"),
            reader=reader_state,
        )
        """
    )
    outcome = run_python(code, timeout=60, args=(str(COUNT), str(SIZE))).result()
    assert outcome["failures"] == [], f"the client reported a failure (SlowPeer?): {outcome}"
    assert outcome["send_error"] is None, outcome
    assert "disconnect" not in outcome["kinds"], f"the client lost its link: {outcome}"
    assert outcome["connected_at_end"], outcome
    assert outcome["reader"]["error"] is None, outcome
    assert outcome["received_bytes"] >= outcome["expected_bytes"], f"messages missing: {outcome}"
    assert outcome["intact"], f"bytes differ from the messages sent, in order: {outcome}"
    assert outcome["messages_whole"] == COUNT
    # After the messages, the client's goodbye on close.
    assert outcome["after"] == "disconnect;", outcome
