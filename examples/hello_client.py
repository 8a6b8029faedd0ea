import sys
import threading

from leads_twisted.comm import Callback, ServiceView, create_client, start_client

port = int(sys.argv[1]) if len(sys.argv) > 1 else 16901
answered = threading.Event()


class Reader(Callback):
    def on_receive(self, service: ServiceView, msg: bytes) -> None:
        print("server says:", msg.decode())
        answered.set()


client = start_client("127.0.0.1", create_client(port, Reader()), parallel=True)
client.send(b"hello")
answered.wait(10)  # the main thread waits for the answer: when it ends, the process ends
client.close()
