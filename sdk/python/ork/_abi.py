"""The bridge to the ork host: the only module that knows how bytes travel.

Inside ork's sandbox, CPython (wasm32-wasi) cannot call custom wasm imports,
so it reaches the host through the *clock gate* of host ABI v1 (abi/ABI.md in
the ork repository): a ``bytearray`` mailbox holds the request, and
``time.clock_getres(id(key) + 16)`` -- where ``key`` is
``struct.pack("<I", id(mailbox))`` -- makes the host read the mailbox, run the
operation and write the response back into it.

Mailbox layout (little-endian u32 words)::

    request (guest -> host)        response (host -> guest)
     0  op_len                      0  status: 0 ok, 1 error, 2 too big
     4  req_len                     4  length of the response JSON
     8  0                           8  0
    12  0                          12  0
    16  op bytes, then req bytes   16  response JSON (status 0 or 1)

Status 2 means the response did not fit: the guest grows the mailbox to at
least ``16 + length`` bytes and triggers the gate again with ``op_len = 0``,
which fetches the pending response without repeating the operation.

Everything above the transport speaks :func:`invoke` (operation name and a
JSON-compatible value in, the decoded response out). A transport is any
object with ``call(op: str, req: bytes) -> tuple[int, bytes]`` returning
status 0 (the response JSON) or 1 (``{"error": "..."}``); tests install one
with :func:`set_transport` (see :mod:`ork.testing`).
"""

import json
import struct
import sys
import time

from ._errors import HostError, OrkError

#: The host ABI version this SDK speaks.
ABI_VERSION = 1
#: What the SDK calls itself in ``abi.hello``.
SDK_NAME = "ork-python/0.1.0"

#: Bytes before the payload in the mailbox.
HEADER_SIZE = 16
#: The mailbox's initial size.
INITIAL_MAILBOX_SIZE = 64 * 1024
#: Longest operation name, in bytes.
MAX_OP_BYTES = 64
#: Largest request the host accepts, in bytes.
MAX_REQUEST_BYTES = 16 << 20

#: Real WASI clock ids are below this; ids from here up are mailbox addresses.
MIN_MAILBOX_ID = 64

STATUS_OK = 0
STATUS_ERROR = 1
STATUS_TOO_BIG = 2

_HEADER = struct.Struct("<IIII")
_RESPONSE = struct.Struct("<II")

# Operation names (abi/ABI.md, "Operations").
OP_HELLO = "abi.hello"
OP_TASK_INFO = "task.info"
OP_EXECUTOR_CONFIG = "executor.config"
OP_TASK_PARAMS = "task.params"
OP_UPSTREAM = "upstream"
OP_METRICS_RECORD = "metrics.record"
OP_LOG = "log"
OP_OUTPUT_SET = "output.set"
OP_ERROR_REPORT = "error.report"
OP_HTTP_REQUEST = "http.request"
OP_SECRET_GET = "secret.get"
OP_SQL_EXECUTE = "sql.execute"
OP_SQL_QUERY = "sql.query"
ALL_OPS = (
    OP_HELLO,
    OP_TASK_INFO,
    OP_EXECUTOR_CONFIG,
    OP_TASK_PARAMS,
    OP_UPSTREAM,
    OP_METRICS_RECORD,
    OP_LOG,
    OP_OUTPUT_SET,
    OP_ERROR_REPORT,
    OP_HTTP_REQUEST,
    OP_SECRET_GET,
    OP_SQL_EXECUTE,
    OP_SQL_QUERY,
)


class Trap(BaseException):
    """The host stopped the guest for breaking the ABI.

    In the sandbox a trap ends the interpreter on the spot, so this is only
    raised by in-process hosts (:mod:`ork.testing`). It derives from
    ``BaseException`` so that ``except Exception`` in task code cannot swallow
    it, just as task code cannot survive a real trap.
    """


# --- mailbox encoding (pure functions on a bytearray) ------------------------


def request_size(op: bytes, req: bytes) -> int:
    """The mailbox size a request needs."""
    return HEADER_SIZE + len(op) + len(req)


def write_request(mailbox: bytearray, op: bytes, req: bytes) -> None:
    """Writes the header and payload of a request into ``mailbox``.

    The mailbox must hold at least :func:`request_size` bytes; it is written
    in place (never resized), so its buffer stays where the host expects it.
    An empty ``op`` asks for the pending response (after status 2).
    """
    end = request_size(op, req)
    if end > len(mailbox):
        raise ValueError(f"mailbox of {len(mailbox)} bytes is too small for a {end}-byte request")
    _HEADER.pack_into(mailbox, 0, len(op), len(req), 0, 0)
    mid = HEADER_SIZE + len(op)
    mailbox[HEADER_SIZE:mid] = op
    mailbox[mid:end] = req


def write_fetch(mailbox: bytearray) -> None:
    """Asks for the response the host kept pending (``op_len = 0``)."""
    _HEADER.pack_into(mailbox, 0, 0, 0, 0, 0)


def read_status(mailbox: bytearray) -> "tuple[int, int]":
    """Returns the response's ``(status, length)``."""
    return _RESPONSE.unpack_from(mailbox, 0)


def read_response(mailbox: bytearray, length: int) -> bytes:
    """Returns the ``length`` bytes of response JSON in ``mailbox``."""
    end = HEADER_SIZE + length
    if end > len(mailbox):
        raise HostError("abi", f"response of {length} bytes overruns the {len(mailbox)}-byte mailbox")
    with memoryview(mailbox) as view:
        return view[HEADER_SIZE:end].tobytes()


def grown_size(current: int, needed: int) -> int:
    """The new size of a mailbox of ``current`` bytes that must hold ``needed``:
    at least double, rounded up to 4 KiB."""
    size = max(needed, 2 * current)
    return (size + 4095) & ~4095


# --- the clock gate -----------------------------------------------------------


class Mailbox:
    """The clock-gate transport: one mailbox and the key that points at it.

    ``trigger`` is what makes the host act on the mailbox. By default it is
    the real gate, ``time.clock_getres(id(key) + 16)``, which only works inside
    ork's sandbox; an in-process host passes a callable that receives the
    mailbox ``bytearray`` and plays the host's part on it.
    """

    def __init__(self, trigger=None, size: int = INITIAL_MAILBOX_SIZE) -> None:
        if size < HEADER_SIZE:
            raise ValueError(f"a mailbox needs at least {HEADER_SIZE} bytes")
        self._trigger = trigger
        self._resize(size)

    @property
    def buffer(self) -> bytearray:
        """The current mailbox."""
        return self._buf

    def _resize(self, size: int) -> None:
        # A new bytearray and a new key: the old buffer is never resized in
        # place, and the key always holds the current mailbox's address.
        self._buf = bytearray(size)
        if self._trigger is None:
            # wasm32: addresses are u32, and the payload of a bytes object
            # starts 16 bytes into it.
            self._key = struct.pack("<I", id(self._buf))
            self._clock_id = id(self._key) + 16

    def _fire(self) -> None:
        if self._trigger is not None:
            self._trigger(self._buf)
            return
        try:
            time.clock_getres(self._clock_id)
        except (OSError, OverflowError, ValueError) as e:
            raise OrkError(
                f"the ork host did not answer the clock gate ({e}); "
                "ork.* calls only work inside an ork task"
            ) from None

    def call(self, op: str, req: bytes) -> "tuple[int, bytes]":
        """Runs one operation; returns ``(status, response JSON)``, status 0
        (ok) or 1 (``{"error": ...}``)."""
        op_bytes = op.encode("utf-8")
        needed = request_size(op_bytes, req)
        if needed > len(self._buf):
            self._resize(grown_size(len(self._buf), needed))
        write_request(self._buf, op_bytes, req)
        self._fire()
        status, length = read_status(self._buf)
        if status == STATUS_TOO_BIG:
            self._resize(grown_size(len(self._buf), HEADER_SIZE + length))
            write_fetch(self._buf)
            self._fire()
            status, length = read_status(self._buf)
        if status not in (STATUS_OK, STATUS_ERROR):
            raise HostError(op, f"the host answered with mailbox status {status} (expected 0 or 1)")
        return status, read_response(self._buf, length)


# --- the current transport ------------------------------------------------------

_transport = None


def set_transport(transport):
    """Installs ``transport`` (an object with ``call(op, req) -> (status,
    bytes)``) for every later call, or the default with ``None``; returns
    the previous one."""
    global _transport
    previous = _transport
    _transport = transport
    return previous


def get_transport():
    """The transport in use: the one installed, else (in ork's sandbox) the
    clock gate."""
    global _transport
    if _transport is None:
        if sys.platform != "wasi":
            raise OrkError(
                "not running inside an ork task: ork's host calls only work in ork's sandbox; "
                "to test executor code, run it with ork.testing.MockHost"
            )
        _transport = Mailbox()
    return _transport


def encode(value) -> bytes:
    """``value`` as compact JSON bytes (NaN and infinities refused)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")


def invoke(op: str, value=None, error=HostError):
    """Performs ``op`` with request ``value``; returns the decoded response.

    Raises ``error(op, message)`` -- :class:`HostError` unless told
    otherwise -- when the host refuses the operation.
    """
    return call(op, encode(value), error)


def call(op: str, req: bytes, error=HostError):
    """Performs ``op`` with the request JSON ``req``; returns the decoded
    response (see :func:`invoke`)."""
    if len(req) > MAX_REQUEST_BYTES:
        raise OrkError(f"{op}: request of {len(req)} bytes exceeds the host's {MAX_REQUEST_BYTES >> 20} MiB limit")
    status, body = get_transport().call(op, req)
    try:
        response = json.loads(body) if body else None
    except ValueError:
        raise HostError(op, f"the host's response is not JSON: {body[:80]!r}") from None
    if status == STATUS_ERROR:
        message = response.get("error") if isinstance(response, dict) else None
        raise error(op, message if isinstance(message, str) else f"unexpected error response {body[:200]!r}")
    return response


def hello():
    """Introduces the SDK to the host (``abi.hello``); returns the host's answer."""
    answer = invoke(OP_HELLO, {"abi": ABI_VERSION, "sdk": SDK_NAME})
    version = answer.get("abi") if isinstance(answer, dict) else None
    if version != ABI_VERSION:
        raise HostError(
            OP_HELLO,
            f"the host speaks ABI v{version}, but this SDK ({SDK_NAME}) speaks v{ABI_VERSION}: "
            "use the ork SDK that comes with your ork",
        )
    return answer
