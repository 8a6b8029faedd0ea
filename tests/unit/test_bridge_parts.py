"""The bridge's pure parts: the bounded up queue, and the broker address, credentials and topic checks."""

from __future__ import annotations

import pytest

from leads_twisted.bridge import UpQueue, parse_broker_url, read_credentials
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
