import sys

from leads_twisted import L
from leads_twisted.comm import Callback, ConnectionBase, ServiceView, create_server, start_server


class Greeter(Callback):
    def on_initialize(self, service: ServiceView) -> None:
        L.info("listening on port", str(service.port()))

    def on_connect(self, service: ServiceView, connection: ConnectionBase) -> None:
        L.info("connected:", str(connection))

    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        L.info("received:", msg.decode())
        service.reply(b"got " + msg)  # to the client this message came from, and no other

    def on_disconnect(self, service: ServiceView, connection: ConnectionBase) -> None:
        L.info("disconnected:", str(connection))


port = int(sys.argv[1]) if len(sys.argv) > 1 else 16901
# This machine only; leave interface out to serve every interface, as LEADS does.
server = create_server(port, Greeter(), interface="127.0.0.1")
# parallel=False: this thread serves until Ctrl-C. With parallel=True the script would reach its end,
# and the process, server included, would end with it.
try:
    start_server(server)
except KeyboardInterrupt:
    L.info("stopped")
