"""Free loopback ports for the embedded services the tests start.

Chosen below Linux's ephemeral range (32768-60999): a port found free there can be taken a moment later
by any outgoing connection's local port. SeaweedFS listens on its S3 port + 0..7 and their gRPC ports
(+10000..+10008), so every base stays below 32768 - 10009."""

import os
import random
import socket

LOW, HIGH = 10000, 22700


def free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_block(size: int) -> int:
    """A base port with `size` consecutive free ports, and free gRPC ports 10000 above them."""
    rng = random.Random(os.getpid() ^ random.getrandbits(32))
    for _ in range(2000):
        base = rng.randrange(LOW, HIGH - size)
        ports = range(base, base + size)
        if all(free(p) and free(p + 10000) for p in ports):
            return base
    raise RuntimeError("no free port block below the ephemeral range")
