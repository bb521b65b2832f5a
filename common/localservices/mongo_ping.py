"""Whether a MongoDB-compatible server answers `ping`: the launcher's readiness probe.

One OP_MSG over a plain socket, so the launchers import no database driver (opslog's
own MongoDB code lives in its store modules). The request is a constant; the reply
is only checked for `ok: 1.0` (BSON double), which every server puts in it.
"""

from __future__ import annotations

import socket
import struct

_OP_MSG = 2013


def _bson_ping() -> bytes:
    """BSON of {"ping": 1, "$db": "admin"}."""
    db = b"admin\x00"
    body = b"\x10ping\x00" + struct.pack("<i", 1) + b"\x02$db\x00" + struct.pack("<i", len(db)) + db
    return struct.pack("<i", 4 + len(body) + 1) + body + b"\x00"


def _request(request_id: int) -> bytes:
    payload = struct.pack("<I", 0) + b"\x00" + _bson_ping()  # no flags; one body section (kind 0)
    return struct.pack("<iiii", 16 + len(payload), request_id, 0, _OP_MSG) + payload


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed before the reply was complete")
        data += chunk
    return data


def ping(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when the server at host:port answers a ping with ok: 1."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_request(1))
            length, _, responds_to, opcode = struct.unpack("<iiii", _receive(sock, 16))
            reply = _receive(sock, length - 16)
    except OSError:
        return False
    ok = reply.find(b"\x01ok\x00")
    return (opcode == _OP_MSG and responds_to == 1 and ok >= 0
            and struct.unpack_from("<d", reply, ok + 4)[0] == 1.0)
