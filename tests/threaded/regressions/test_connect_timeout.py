"""Bug 7: ``start_client`` against an endpoint whose ``connect()`` never fires gives up with ``TimeoutError``
within a bound instead of hanging, after ``on_fail`` with the same exception.

The README: "``start_client`` raises ``ConnectionRefusedError``, ``TimeoutError`` or another ``OSError`` when it
cannot connect. Either way ``on_fail(service, error)`` was called first with the same exception. It never
hangs: a start that does not come up in time (... the connect timeout plus 15 s for a client) raises
``TimeoutError``." The bound checked is that one, with 2 s of slack."""

from __future__ import annotations

from support import run_python

from threaded.api.prelude import script

CONNECT_TIMEOUT = 0.5
#: How long start_client may take with that connect_timeout: the README's bound, and 2 s of slack.
BOUND_SECONDS = CONNECT_TIMEOUT + 15.0 + 2.0
#: How long the script watches the start (longer than the bound, to tell a slow return from a hang).
HANG_SECONDS = BOUND_SECONDS + 2.0


def test_start_client_on_an_endpoint_that_never_connects_times_out():
    code = script(
        """
        watchdog(float(sys.argv[1]) + 10)  # the last resort; the thread below reports a hang first
        from twisted.internet.defer import Deferred
        from leads_twisted.comm import create_client, start_client

        class NeverEndpoint:
            \"\"\"A client endpoint whose connection attempt never completes nor fails.\"\"\"

            def __init__(self):
                self.attempts = 0

            def connect(self, factory):
                self.attempts += 1
                return Deferred()

        endpoint = NeverEndpoint()
        events = Events()
        client = create_client(callback=events, endpoint=endpoint, connect_timeout=float(sys.argv[2]))
        outcome = {}
        raised = []

        def start():
            started = time.monotonic()
            try:
                start_client("127.0.0.1", client, parallel=True)
                outcome["raised"] = None
            except BaseException as error:
                raised.append(error)
                outcome["raised"] = type(error).__name__
                outcome["is_timeout"] = isinstance(error, TimeoutError)
                outcome["message"] = str(error)
            outcome["seconds"] = time.monotonic() - started

        starter = threading.Thread(target=start, daemon=True)
        starter.start()
        starter.join(float(sys.argv[1]))
        if starter.is_alive():
            result(hung=True, attempts=endpoint.attempts, kinds=events.kinds())
            os._exit(0)
        failures = events.of("fail")
        result(
            hung=False,
            attempts=endpoint.attempts,
            state=client.state.value,
            kinds=events.kinds(),
            failures=[type(e).__name__ for e in failures],
            failures_are_timeouts=[isinstance(e, TimeoutError) for e in failures],
            failures_are_the_raised_error=[any(e is r for r in raised) for e in failures],
            **outcome,
        )
        """
    )
    outcome = run_python(code, timeout=HANG_SECONDS + 20, args=(str(HANG_SECONDS), str(CONNECT_TIMEOUT))).result()
    assert not outcome["hung"], f"start_client was still waiting after {HANG_SECONDS} s: {outcome}"
    assert outcome["attempts"] == 1, outcome
    assert outcome["raised"] is not None and outcome["is_timeout"], (
        f"start_client did not raise TimeoutError: {outcome}"
    )
    assert outcome["seconds"] < BOUND_SECONDS, (
        f"start_client took {outcome['seconds']:.1f} s to give up with connect_timeout={CONNECT_TIMEOUT}: {outcome}"
    )
    assert outcome["failures_are_timeouts"] == [True], f"on_fail should get the same TimeoutError once: {outcome}"
    assert outcome["failures_are_the_raised_error"] == [True], f"on_fail got another exception object: {outcome}"
    assert outcome["state"] == "closed", outcome
    assert "connect" not in outcome["kinds"], outcome
