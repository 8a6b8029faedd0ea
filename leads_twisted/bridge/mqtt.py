"""``MQTTBridge``: a server's local traffic to and from an MQTT broker, for fleets and remote dashboards.

Every message a local client sends is published to ``<root>/up``; every message on ``<root>/down`` goes to
every local client as the relay would send a client's message; ``<root>/status`` is ``online`` (retained)
while the bridge is connected and ``offline`` otherwise (the broker publishes that through the Last Will when
the vehicle vanishes). What came from ``down`` is sent with ``Server.broadcast``, which observers never see
as ``message_in``, so it can never go back ``up``.

The vehicle never waits for the broker: the bridge watches the server through the observer seam, runs in the
reactor thread, and while the broker is away it keeps ``up`` messages in a queue bounded in bytes (oldest
dropped and counted) and retries with jittered backoff.
"""

from __future__ import annotations

import ssl

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage, MQTTMessageInfo, MQTTv311
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python import threadable
from twisted.python.failure import Failure

from leads_twisted.bridge.paho_reactor import ReactorDriver
from leads_twisted.bridge.probe import probe
from leads_twisted.bridge.publish_batch import PublishEncoder
from leads_twisted.bridge.settings import BrokerAddress, check_topic_root, check_vehicle, parse_broker_url
from leads_twisted.bridge.up_queue import DEFAULT_QUEUE_BYTES, UpQueue
from leads_twisted.comm import Backoff, LinkView, Observer, ServerHub, ServiceView
from leads_twisted.comm.reactor_types import IHubReactor, global_reactor

_log = Logger(namespace="leads_twisted.bridge")

#: QoS 1: ``up`` messages handed to paho and not yet acknowledged by the broker.
WINDOW: int = 256
#: QoS 0: at most this many bytes of ``up`` messages are encoded into one buffer for the socket.
BATCH_BYTES: int = 256 * 1024
#: Seconds between the broker's PINGs when nothing else flows; also how fast a silent broker is noticed.
KEEPALIVE: int = 15
#: Seconds a connection attempt may take: the probe's bound, and paho's for its blocking connect after it.
CONNECT_TIMEOUT: float = 5.0
#: Seconds ``stop`` waits for the ``offline`` status and the disconnect to be written.
STOP_TIMEOUT: float = 2.0


class _Watcher(Observer):
    """The bridge's ear on one server: every message a local client sends, nothing else."""

    def __init__(self, server: ServerHub, bridge: MQTTBridge) -> None:
        self._server = server
        self._bridge = bridge

    def message_in(self, service: ServiceView, connection: LinkView, msg: bytes) -> None:
        if service is self._server:
            self._bridge.send_up(msg)


class MQTTBridge:
    """Bridges ``server`` to the broker at ``url`` (``mqtt://HOST[:PORT]`` or ``mqtts://``) as ``vehicle``.

    ``topic`` replaces the root ``leads/<vehicle>``; ``qos`` (0 or 1) and ``retain`` apply to ``up``;
    ``queue_bytes`` bounds what waits for the broker; ``username``/``password`` log in; ``tls`` is the client
    context for ``mqtts://`` (``settings.tls_context`` makes one; the system's CAs by default). Call ``start``
    and ``stop``; the counters (``published``, ``dropped``, ``received``...) are read in the reactor thread.
    """

    def __init__(
        self,
        server: ServerHub,
        url: str,
        vehicle: str,
        *,
        topic: str | None = None,
        qos: int = 0,
        retain: bool = False,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        backoff: Backoff | None = None,
        reactor: IHubReactor | None = None,
    ) -> None:
        if qos not in (0, 1):
            raise ValueError(f"the bridge's QoS must be 0 or 1, not {qos!r}")
        if reactor is None:
            reactor = global_reactor()
        self.broker: BrokerAddress = parse_broker_url(url)
        self.vehicle: str = check_vehicle(vehicle)
        root = check_topic_root(topic if topic is not None else f"leads/{vehicle}")
        self.up_topic, self.down_topic, self.status_topic = f"{root}/up", f"{root}/down", f"{root}/status"
        self.qos: int = qos
        self.retain: bool = retain
        self.published: int = 0  #: ``up`` messages the broker has (acknowledged for QoS 1, written for QoS 0)
        self.received: int = 0  #: ``down`` messages handed to the local clients
        self.rejected: int = 0  #: ``down`` messages that could not be framed for the clients (logged)
        self._server = server
        self._reactor = reactor
        self._queue = UpQueue(queue_bytes)
        #: QoS 1: ``up`` messages handed to paho, by message id, oldest first, with paho's handle on each.
        self._unconfirmed: dict[int, tuple[MQTTMessageInfo, bytes]] = {}
        #: QoS 0: ``up`` messages are encoded here and written in chunks beside paho, not through it.
        self._encoder = PublishEncoder(self.up_topic, retain)
        self._pump_call: IDelayedCall | None = None
        self._delay = (backoff or Backoff()).policy()
        self._failures = 0
        self._retry: IDelayedCall | None = None
        self._probing: Deferred[None] | None = None
        self._running = False
        self._connected = False
        self._stopped: Deferred[None] | None = None
        self._connect_waiters: list[Deferred[None]] = []
        self._client = self._make_client(username, password, tls)
        self._driver = ReactorDriver(self._client, reactor, idle=self._idle, sent=self._sent)
        self._watcher = _Watcher(server, self)

    def _make_client(self, username: str | None, password: str | None, tls: ssl.SSLContext | None) -> Client:
        client = Client(CallbackAPIVersion.VERSION2, client_id=f"leads-{self.vehicle}", protocol=MQTTv311)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        if self.qos == 1:
            client.on_publish = self._on_publish
        client.max_inflight_messages_set(WINDOW)
        client.connect_timeout = CONNECT_TIMEOUT
        client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        if username is not None:
            client.username_pw_set(username, password)
        if self.broker.tls:
            client.tls_set_context(tls if tls is not None else ssl.create_default_context())
        client.connect_async(self.broker.host, self.broker.port, KEEPALIVE)
        return client

    # Counters, read in the reactor thread.

    @property
    def connected(self) -> bool:
        """True while the broker has accepted the bridge."""
        return self._connected

    @property
    def dropped(self) -> int:
        """``up`` messages dropped, oldest first, because the queue was at its bound."""
        return self._queue.dropped

    @property
    def queued(self) -> int:
        """``up`` messages waiting for the broker."""
        return len(self._queue) + len(self._unconfirmed) + self._driver.buffered

    @property
    def queued_bytes(self) -> int:
        """Bytes of ``up`` messages waiting in the bounded queue (those already with paho not counted)."""
        return self._queue.bytes

    def when_connected(self) -> Deferred[None]:
        """A Deferred that fires once the broker has accepted the bridge (at once if it has); reactor thread."""
        if self._connected:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._connect_waiters.append(waiter)
        return waiter

    # Life.

    def start(self) -> None:
        """Watch the server and connect; from any thread. Never fails for the broker's sake: it retries."""
        if not threadable.isInIOThread():
            self._reactor.callFromThread(self.start)
            return
        if self._running:
            return
        self._running = True
        self._server.add_observer(self._watcher)
        _log.info("bridge: connecting to {broker} as {topic}", broker=str(self.broker), topic=self.up_topic)
        self._attempt()

    def stop(self) -> Deferred[None]:
        """Stop watching, say ``offline`` and disconnect; the Deferred fires once that is written (or after
        ``STOP_TIMEOUT``). In the reactor thread."""
        if self._stopped is not None:
            return self._stopped
        self._running = False
        self._server.remove_observer(self._watcher)
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        if self._pump_call is not None and self._pump_call.active():
            self._pump_call.cancel()
        self._pump_call = None
        if self._probing is not None:
            self._probing.cancel()
        if not self._connected:
            self._stopped = succeed(None)
            return self._stopped
        self._stopped = Deferred()
        self._client.publish(self.status_topic, b"offline", qos=1, retain=True)
        self._client.disconnect()
        self._reactor.callLater(STOP_TIMEOUT, self._fire_stopped)
        return self._stopped

    def _fire_stopped(self) -> None:
        if self._stopped is not None and not self._stopped.called:
            self._stopped.callback(None)

    def send_up(self, msg: bytes) -> None:
        """Publish ``msg`` to ``up`` now, or once the broker is back; in the reactor thread. The server's
        observer calls it for each local message; call it yourself for messages of your own."""
        queue = self._queue
        if self._connected and queue.bytes + len(msg) > queue.limit:
            self._pump()  # a full queue drops only what the broker's link cannot take now
        queue.push(bytes(msg))
        if self._connected and self._pump_call is None:
            # Pump once the reactor has read what it is reading: a whole chunk of local messages goes in one go.
            self._pump_call = self._reactor.callLater(0, self._pump_now)

    # The broker.

    def _attempt(self) -> None:
        self._retry = None
        if not self._running:
            return
        self._probing = probe(self._reactor, self.broker.host, self.broker.port, CONNECT_TIMEOUT)
        self._probing.addCallbacks(self._connect, self._unreachable)

    def _unreachable(self, failure: Failure) -> None:
        self._probing = None
        if self._running:
            self._retry_later(failure.getErrorMessage() or repr(failure.value))

    def _connect(self, _: None) -> None:
        """The broker's port just answered: let paho connect (blocking, but to a port known to be there)."""
        self._probing = None
        if not self._running:
            return
        try:
            result = self._client.reconnect()
        except (OSError, ValueError) as error:  # refused, unreachable, name unknown, TLS refused
            self._retry_later(str(error) or type(error).__name__)
            return
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._retry_later(f"paho could not send CONNECT ({result.name})")

    def _retry_later(self, why: str) -> None:
        delay = self._delay(self._failures)
        self._failures += 1
        _log.info(
            "bridge: no link to {broker} ({why}); next try in {delay:.1f} s",
            broker=str(self.broker),
            why=why,
            delay=delay,
        )
        self._retry = self._reactor.callLater(delay, self._attempt)

    def _on_connect(
        self, client: Client, userdata: object, flags: ConnectFlags, reason: ReasonCode, properties: Properties | None
    ) -> None:
        if reason.is_failure:
            _log.error("bridge: {broker} refused the bridge: {reason}", broker=str(self.broker), reason=str(reason))
            return  # paho closes the link; _on_disconnect retries
        self._connected = True
        self._failures = 0
        _log.info(
            "bridge: connected to {broker} as {topic}; {waiting} messages waiting, {dropped} dropped in all",
            broker=str(self.broker),
            topic=self.up_topic,
            waiting=self.queued,
            dropped=self.dropped,
        )
        client.subscribe(self.down_topic, qos=1)
        client.publish(self.status_topic, b"online", qos=1, retain=True)
        self._pump()
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _on_disconnect(
        self,
        client: Client,
        userdata: object,
        flags: DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected, self._connected = self._connected, False
        if self.qos == 0:
            # The chunk the close cut short: its whole packets are out (counted), the rest go again first. QoS 1
            # messages paho resends itself.
            messages, sent = self._driver.take_cut()
            if messages:
                done = self._encoder.written(messages, sent)
                self.published += done
                self._queue.push_front(messages[done:])
        if self._stopped is not None:
            self._fire_stopped()
            return
        if self._running and self._retry is None:
            self._retry_later(f"{'lost' if was_connected else 'closed'}: {reason}")

    def _pump_now(self) -> None:
        self._pump_call = None
        self._pump()

    def _pump(self) -> None:
        """Hand waiting ``up`` messages on, in order: QoS 0 as encoded chunks to the socket, QoS 1 to paho while
        fewer than ``WINDOW`` are unacknowledged."""
        if not self._connected:
            return
        queue = self._queue
        if self.qos == 0:
            driver, encode = self._driver, self._encoder.encode
            while queue and driver.can_write():
                messages = queue.take(BATCH_BYTES)
                if driver.write(encode(messages), messages):
                    self.published += len(messages)
            return
        unconfirmed, client = self._unconfirmed, self._client
        while queue and len(unconfirmed) < WINDOW:
            msg = queue.pop()
            info = client.publish(self.up_topic, msg, qos=1, retain=self.retain)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                queue.push_front([msg])
                return
            unconfirmed[info.mid] = (info, msg)

    def _on_publish(
        self, client: Client, userdata: object, mid: int, reason: ReasonCode, properties: Properties | None
    ) -> None:
        """QoS 1: the broker acknowledged ``mid``."""
        if self._unconfirmed.pop(mid, None) is not None:
            self.published += 1
            if self._connected:
                self._pump()

    def _sent(self, count: int) -> None:
        """QoS 0: a chunk of ``count`` messages is written to the broker's socket."""
        self.published += count

    def _idle(self) -> None:
        """Everything is written: QoS 0 writes the next chunk (QoS 1 goes on as the broker acknowledges)."""
        if self.qos == 0 and self._connected:
            self._pump()

    def _on_message(self, client: Client, userdata: object, message: MQTTMessage) -> None:
        try:
            self._server.broadcast(bytes(message.payload))
        except ValueError as error:
            self.rejected += 1
            _log.warn(
                "bridge: a message on {topic} was not sent to the local clients: {error}",
                topic=message.topic,
                error=str(error),
            )
            return
        self.received += 1
