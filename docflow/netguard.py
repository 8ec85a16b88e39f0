"""Outbound HTTP that cannot be turned against the inside (SSRF): `POST /v1/documents:fromUrl` downloads and
passthrough webhooks.

Every hop (the URL and each redirect) is resolved here, every address it resolves to is checked (private,
loopback, link-local, cloud metadata, multicast, reserved... are refused unless a CIDR of
`DOCFLOW_API_FETCH_ALLOW_NETWORKS` contains it), and the connection goes to the address that was checked (the
Host header and TLS server name stay the host's), so DNS cannot answer differently between check and connect.
"""

import ipaddress
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import httpx

from docflow.errors import DocflowError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Not covered by ipaddress' is_private & co. on every Python: carrier-grade NAT, IETF protocol assignments,
# benchmarking, and the cloud metadata endpoints (AWS IPv6 IMDS is in a private range, listed for clarity).
_ALSO_BLOCKED = [
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "169.254.169.254/32", "fd00:ec2::254/128")
]


class BlockedAddress(DocflowError):
    """The URL points (or redirects) to an address the service may not reach."""


class FetchError(DocflowError):
    """The URL could not be downloaded (bad scheme, DNS failure, HTTP error, timeout...)."""


class TooLarge(DocflowError):
    """The response is larger than allowed."""


def parse_networks(cidrs: tuple[str, ...] | list[str]) -> list[Network]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def check_address(ip: IPAddress, allow: list[Network]) -> None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip in net for net in allow if net.version == ip.version):
        return
    if (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or any(ip in net for net in _ALSO_BLOCKED if net.version == ip.version)
    ):
        raise BlockedAddress(
            f"refusing to connect to {ip}: a private, loopback, link-local or reserved address"
        )


def resolve(host: str, port: int, allow: list[Network]) -> IPAddress:
    """The address to connect to for `host`: every address it resolves to must pass the check."""
    try:
        return _checked([ipaddress.ip_address(host.strip("[]"))], allow)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"cannot resolve {host!r}: {exc}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise FetchError(f"{host!r} resolves to no address")
    return _checked(addresses, allow)


def _checked(addresses: list[IPAddress], allow: list[Network]) -> IPAddress:
    for ip in addresses:
        check_address(ip, allow)
    return addresses[0]


@dataclass(frozen=True)
class Fetched:
    size: int
    url: str  # the final URL after redirects
    content_type: str  # as the server declared it (the content is sniffed, not trusted)
    disposition: str  # the Content-Disposition header, for a file name


def _pinned_request(
    client: httpx.Client, method: str, url: httpx.URL, allow: list[Network], **kw
) -> httpx.Request:
    if url.scheme not in ("http", "https"):
        raise FetchError(f"only http and https URLs are accepted, not {url.scheme!r}")
    if not url.host:
        raise FetchError(f"no host in {url}")
    port = url.port or (443 if url.scheme == "https" else 80)
    ip = resolve(url.host, port, allow)
    target = url.copy_with(host=str(ip))
    headers = dict(kw.pop("headers", None) or {})
    headers["Host"] = url.netloc.decode("ascii")
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return client.build_request(method, target, headers=headers, extensions=extensions, **kw)


@contextmanager
def open_url(
    url: str, allow: list[Network], timeout: float, max_redirects: int
) -> Iterator[tuple[httpx.Response, str]]:
    """GET `url` following redirects by hand, each hop checked; yields the streaming response and its URL."""
    deadline = time.monotonic() + timeout
    current = httpx.URL(url)
    with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False) as client:
        for _ in range(max_redirects + 1):
            request = _pinned_request(client, "GET", current, allow, headers={"User-Agent": "docflow-fetch"})
            try:
                response = client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise FetchError(f"GET {current} failed: {type(exc).__name__}: {exc}") from exc
            if response.is_redirect and "location" in response.headers:
                response.close()
                current = current.join(response.headers["location"])
                if time.monotonic() > deadline:
                    raise FetchError(f"GET {url} timed out after {timeout} s")
                continue
            try:
                if response.status_code >= 400:
                    raise FetchError(f"GET {current} answered HTTP {response.status_code}")
                yield response, str(current)
            finally:
                response.close()
            return
    raise FetchError(f"GET {url}: more than {max_redirects} redirects")


def download(
    url: str, sink: IO[bytes], allow: list[Network], timeout: float, max_redirects: int, max_bytes: int
) -> Fetched:
    """Stream `url` into `sink` (checked hops, size limit, overall timeout); the sink hashes."""
    deadline = time.monotonic() + timeout
    with open_url(url, allow, timeout, max_redirects) as (response, final):
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"{final} is {declared} bytes; the limit is {max_bytes}")
        size = 0
        try:
            for block in response.iter_bytes(256 * 1024):
                size += len(block)
                if size > max_bytes:
                    raise TooLarge(f"{final} is larger than the limit of {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise FetchError(f"GET {url} timed out after {timeout} s")
                sink.write(block)
        except httpx.HTTPError as exc:
            raise FetchError(f"GET {final} failed: {type(exc).__name__}: {exc}") from exc
        headers = response.headers
        return Fetched(size, final, headers.get("content-type", ""), headers.get("content-disposition", ""))


def post_json(
    url: str, body: bytes, headers: dict[str, str], allow: list[Network], timeout: float
) -> httpx.Response:
    """POST to a webhook with the same address checks (no redirects followed)."""
    with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False) as client:
        request = _pinned_request(
            client,
            "POST",
            httpx.URL(url),
            allow,
            headers={**headers, "Content-Type": "application/json"},
            content=body,
        )
        return client.send(request)
