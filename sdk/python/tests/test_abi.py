"""The clock-gate mailbox protocol (abi/ABI.md) and the transport layer."""

import json
import struct

import pytest

from ork import HostError, OrkError, _abi


class FakeHost:
    """The host's half of the clock gate, operating on the mailbox bytearray
    directly: reads the request, answers from ``responses`` (op -> (status,
    body)), keeps a response that does not fit pending (status 2), and serves
    it on a fetch (op_len = 0)."""

    def __init__(self, responses) -> None:
        self.responses = responses
        self.pending = None
        self.seen = []  # (op, req, mailbox size, mailbox id)

    def __call__(self, mailbox: bytearray) -> None:
        op_len, req_len, zero1, zero2 = struct.unpack_from("<IIII", mailbox, 0)
        assert (zero1, zero2) == (0, 0)
        if op_len == 0:
            assert self.pending is not None, "fetch with nothing pending"
            status, body = self.pending
            self.seen.append(("<fetch>", None, len(mailbox), id(mailbox)))
        else:
            op = bytes(mailbox[16:16 + op_len]).decode()
            req = bytes(mailbox[16 + op_len:16 + op_len + req_len])
            self.seen.append((op, req, len(mailbox), id(mailbox)))
            status, body = self.responses[op]
        self.pending = None
        if 16 + len(body) > len(mailbox):
            self.pending = (status, body)
            struct.pack_into("<IIII", mailbox, 0, 2, len(body), 0, 0)
            return
        struct.pack_into("<IIII", mailbox, 0, status, len(body), 0, 0)
        mailbox[16:16 + len(body)] = body


def test_write_request_layout():
    box = bytearray(64)
    _abi.write_request(box, b"task.info", b"null")
    assert struct.unpack_from("<IIII", box, 0) == (9, 4, 0, 0)
    assert bytes(box[16:29]) == b"task.infonull"
    assert len(box) == 64  # written in place, never resized


def test_write_request_refuses_a_small_mailbox():
    with pytest.raises(ValueError, match="too small"):
        _abi.write_request(bytearray(20), b"abi.hello", b"{}")


def test_write_fetch_zeroes_the_lengths():
    box = bytearray(b"\xff" * 32)
    _abi.write_fetch(box)
    assert struct.unpack_from("<IIII", box, 0) == (0, 0, 0, 0)


def test_read_status_and_response():
    box = bytearray(32)
    struct.pack_into("<II", box, 0, 1, 5)
    box[16:21] = b'"abc"'
    assert _abi.read_status(box) == (1, 5)
    assert _abi.read_response(box, 5) == b'"abc"'
    with pytest.raises(HostError, match="overruns"):
        _abi.read_response(box, 17)


def test_grown_size():
    assert _abi.grown_size(65536, 70000) == 131072
    assert _abi.grown_size(65536, 300001) == 303104  # rounded up to 4 KiB
    assert _abi.grown_size(16, 17) == 4096


def test_call_roundtrip():
    host = FakeHost({"upstream": (0, b'{"a":1}')})
    box = _abi.Mailbox(trigger=host)
    assert box.call("upstream", b"null") == (0, b'{"a":1}')
    assert host.seen == [("upstream", b"null", _abi.INITIAL_MAILBOX_SIZE, id(box.buffer))]


def test_error_status_is_returned():
    host = FakeHost({"log": (1, b'{"error":"bad level"}')})
    assert _abi.Mailbox(trigger=host).call("log", b"{}") == (1, b'{"error":"bad level"}')


def test_status_2_grows_the_mailbox_and_fetches_with_op_len_0():
    big = json.dumps({"x": "y" * 100_000}).encode()
    host = FakeHost({"upstream": (0, big)})
    box = _abi.Mailbox(trigger=host)
    first = box.buffer
    status, body = box.call("upstream", b"null")
    assert (status, body) == (0, big)
    (op1, _, size1, id1), (op2, req2, size2, id2) = host.seen
    assert (op1, size1) == ("upstream", 64 * 1024)
    assert op2 == "<fetch>" and req2 is None
    assert size2 >= 16 + len(big)
    assert box.buffer is not first and id2 == id(box.buffer)  # a new bytearray
    # The grown mailbox is kept for later calls.
    host.responses["task.info"] = (0, b"{}")
    box.call("task.info", b"null")
    assert host.seen[-1][2] == size2


def test_status_2_for_an_error_response():
    body = json.dumps({"error": "e" * 70_000}).encode()
    host = FakeHost({"log": (1, body)})
    assert _abi.Mailbox(trigger=host).call("log", b"{}") == (1, body)


def test_a_large_request_grows_the_mailbox_before_the_call():
    req = json.dumps("z" * 200_000).encode()
    host = FakeHost({"output.set": (0, b"null")})
    box = _abi.Mailbox(trigger=host)
    assert box.call("output.set", req) == (0, b"null")
    op, seen_req, size, _ = host.seen[0]
    assert seen_req == req and size >= 16 + len("output.set") + len(req)


def test_unexpected_status_is_an_error():
    def host(box):
        struct.pack_into("<II", box, 0, 7, 0)

    with pytest.raises(HostError, match="status 7"):
        _abi.Mailbox(trigger=host).call("task.info", b"null")


def test_mailbox_minimum_size():
    with pytest.raises(ValueError):
        _abi.Mailbox(trigger=lambda b: None, size=8)


class Recorder:
    def __init__(self, answers) -> None:
        self.answers = answers
        self.calls = []

    def call(self, op, req):
        self.calls.append((op, req))
        return self.answers[op]


@pytest.fixture
def transport():
    def install(answers):
        rec = Recorder(answers)
        installed.append(_abi.set_transport(rec))
        return rec

    installed = []
    yield install
    for previous in installed:
        _abi.set_transport(previous)


def test_invoke_encodes_compact_json(transport):
    rec = transport({"metrics.record": (0, b"null")})
    assert _abi.invoke("metrics.record", {"name": "rows", "value": 1, "labels": {"a": "é"}}) is None
    assert rec.calls == [("metrics.record", b'{"name":"rows","value":1,"labels":{"a":"\\u00e9"}}')]


def test_invoke_null_request_and_empty_response(transport):
    rec = transport({"task.params": (0, b"")})
    assert _abi.invoke("task.params") is None
    assert rec.calls == [("task.params", b"null")]


def test_invoke_refuses_nan():
    with pytest.raises(ValueError):
        _abi.invoke("metrics.record", {"value": float("nan")})


def test_status_1_raises_host_error(transport):
    transport({"log": (1, b'{"error":"log level \\"x\\" must be one of debug, info, warn, error"}')})
    with pytest.raises(HostError) as info:
        _abi.invoke("log", {"level": "x", "message": "m"})
    assert info.value.op == "log"
    assert info.value.message.startswith('log level "x"')
    assert isinstance(info.value, OrkError)
    assert str(info.value).startswith("log: log level")


def test_malformed_responses(transport):
    transport({"upstream": (0, b"{nope"), "log": (1, b"[1]")})
    with pytest.raises(HostError, match="not JSON"):
        _abi.invoke("upstream")
    with pytest.raises(HostError, match="unexpected error response"):
        _abi.invoke("log", {})


def test_request_size_limit(transport):
    rec = transport({})
    with pytest.raises(OrkError, match="16 MiB"):
        _abi.call("output.set", b"x" * (_abi.MAX_REQUEST_BYTES + 1))
    assert rec.calls == []


def test_hello(transport):
    rec = transport({"abi.hello": (0, b'{"abi":1,"host":"ork/0.1.0"}')})
    assert _abi.hello() == {"abi": 1, "host": "ork/0.1.0"}
    assert rec.calls == [("abi.hello", b'{"abi":1,"sdk":"ork-python/0.1.0"}')]


def test_hello_version_mismatch(transport):
    transport({"abi.hello": (0, b'{"abi":2,"host":"ork/9"}')})
    with pytest.raises(HostError, match="ABI v2, but this SDK"):
        _abi.hello()


def test_no_host_outside_the_sandbox(monkeypatch):
    monkeypatch.setattr(_abi.sys, "platform", "linux")
    previous = _abi.set_transport(None)
    try:
        with pytest.raises(OrkError, match="MockHost"):
            _abi.invoke("task.info")
    finally:
        _abi.set_transport(previous)


def test_set_transport_returns_the_previous_one():
    a, b = Recorder({}), Recorder({})
    original = _abi.set_transport(a)
    try:
        assert _abi.set_transport(b) is a
        assert _abi.get_transport() is b
    finally:
        _abi.set_transport(original)
