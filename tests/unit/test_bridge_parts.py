"""The bridge's pure parts: the up queue, the QoS 0 PUBLISH encoder, the broker address, credentials, topics."""

from __future__ import annotations

import pytest

from leads_twisted.bridge import UpQueue, parse_broker_url, read_credentials
from leads_twisted.bridge.publish_batch import PublishEncoder, remaining_length
from leads_twisted.bridge.settings import BrokerAddress, check_topic_root, check_vehicle


def test_queue_keeps_order_within_the_bound():
    queue = UpQueue(10)
    for msg in (b"aa", b"bbb", b"cccc"):
        queue.push(msg)
    assert (len(queue), queue.bytes, queue.dropped) == (3, 9, 0)
    assert [queue.pop() for _ in range(3)] == [b"aa", b"bbb", b"cccc"]
    assert not queue and queue.bytes == 0


def test_queue_drops_the_oldest_past_the_bound():
    queue = UpQueue(10)
    for msg in (b"1111", b"2222", b"3333"):
        queue.push(msg)
    assert (len(queue), queue.bytes, queue.dropped) == (2, 8, 1)
    assert queue.pop() == b"2222"


def test_a_message_bigger_than_the_bound_is_dropped_itself():
    queue = UpQueue(4)
    queue.push(b"ok")
    queue.push(b"far too big")
    assert (len(queue), queue.bytes, queue.dropped) == (0, 0, 2)


def test_push_front_goes_first_and_keeps_the_bound():
    queue = UpQueue(8)
    queue.push(b"cc")
    queue.push_front([b"aa", b"bb"])
    assert [queue.pop() for _ in range(3)] == [b"aa", b"bb", b"cc"]
    queue.push(b"zzzz")
    queue.push_front([b"xxx", b"yyy"])  # 10 bytes: the oldest (now the front) goes
    assert (queue.dropped, queue.pop()) == (1, b"yyy")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker", BrokerAddress("broker", 1883, False)),
        ("mqtts://broker.example:18883", BrokerAddress("broker.example", 18883, True)),
        ("mqtt://[::1]:1884/", BrokerAddress("::1", 1884, False)),
    ],
)
def test_broker_urls(url, expected):
    assert parse_broker_url(url) == expected


def test_broker_address_reads_back():
    assert str(parse_broker_url("mqtts://[::1]")) == "mqtts://[::1]:8883"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("tcp://broker", "must start with mqtt:// or mqtts://"),
        ("mqtt://", "names no host"),
        ("mqtt://broker:0x10", "not a number"),
        ("mqtt://u:p@broker", "credentials file"),
        ("mqtt://broker/topic", "only a host and a port"),
    ],
)
def test_bad_broker_urls(url, complaint):
    with pytest.raises(ValueError, match=complaint):
        parse_broker_url(url)


def test_credentials_file(tmp_path):
    path = tmp_path / "credentials"
    path.write_text("car1\npass:with;colons \n")
    assert read_credentials(str(path)) == ("car1", "pass:with;colons ")
    path.write_text("car1\n")
    assert read_credentials(str(path)) == ("car1", "")
    path.write_text("")
    with pytest.raises(ValueError, match="user name on its first line"):
        read_credentials(str(path))
    with pytest.raises(ValueError, match="cannot read"):
        read_credentials(str(tmp_path / "absent"))


@pytest.mark.parametrize("name", ["", "car/1", "car+", "#"])
def test_vehicle_names_are_one_topic_level(name):
    with pytest.raises(ValueError, match="one topic level"):
        check_vehicle(name)


@pytest.mark.parametrize("root", ["", "fleet/+", "fleet/#", "fleet/"])
def test_topic_roots_are_plain(root):
    with pytest.raises(ValueError, match="plain topic"):
        check_topic_root(root)
    assert check_topic_root("fleet/car1") == "fleet/car1"


def test_queue_take_stops_at_the_limit_but_always_gives_one():
    queue = UpQueue(100)
    for msg in (b"aaaa", b"bbbb", b"cccc"):
        queue.push(msg)
    assert queue.take(9) == [b"aaaa", b"bbbb"]
    assert (len(queue), queue.bytes) == (1, 4)
    assert queue.take(1) == [b"cccc"]
    assert (len(queue), queue.bytes) == (0, 0)
    queue.push(b"dd")
    assert queue.take(100) == [b"dd"]
    assert queue.take(100) == []


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_remaining_length_as_mqtt_writes_it(value, encoded):
    assert remaining_length(value) == encoded


def test_remaining_length_past_mqtt_is_refused():
    with pytest.raises(ValueError, match="268435455"):
        remaining_length(268_435_456)


def test_qos0_publish_packets():
    encoder = PublishEncoder("a/b")
    assert encoder.encode([b"hi"]) == b"\x30\x07\x00\x03a/bhi"
    assert PublishEncoder("a/b", retain=True).encode([b""]) == b"\x31\x05\x00\x03a/b"
    big = b"x" * 200  # remaining length 205: two length bytes
    assert encoder.encode([b"hi", big]) == b"\x30\x07\x00\x03a/bhi" + b"\x30\xcd\x01\x00\x03a/b" + big
    assert encoder.packet_size(big) == 3 + 5 + 200
    huge = b"y" * 5000  # past the cached header lengths
    assert encoder.encode([huge]) == b"\x30" + remaining_length(5005) + b"\x00\x03a/b" + huge


def test_written_counts_whole_packets_only():
    encoder = PublishEncoder("t")
    messages = [b"one", b"two", b"three"]
    sizes = [encoder.packet_size(msg) for msg in messages]
    assert encoder.written(messages, 0) == 0
    assert encoder.written(messages, sizes[0] - 1) == 0
    assert encoder.written(messages, sizes[0]) == 1
    assert encoder.written(messages, sizes[0] + sizes[1] + 1) == 2
    assert encoder.written(messages, sum(sizes)) == 3
