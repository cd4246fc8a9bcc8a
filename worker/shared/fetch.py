"""Downloading a client-supplied `video_url` without letting it reach our own network.

A URL is attacker-controlled: it may name a private address, a cloud metadata endpoint, or a public
host that redirects to one, or resolve to a different address on the second lookup (DNS
rebinding). So every hop is resolved once, every resolved address must be public (or allowlisted
with FETCH_ALLOW, and then not one of the FETCH_DENY ports: the local stack allows loopback for
test servers but never its own Redis or S3), and the connection goes to the address that was checked (the URL keeps the name
for Host and TLS SNI/verification). Size and time are capped while streaming, since
Content-Length can lie. Webhook POSTs go through the same guard.

The time cap is a hard deadline for the whole download, redirects included: httpx's timeouts
apply to each read, so a server trickling a byte every few seconds (slow loris) would never trip
them. A watchdog timer shuts the connection's socket down at the deadline, whatever phase the
download is in (TLS handshake, headers, body), and the download fails `file_download_timeout`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 5
_REDIRECT_CODES = {301, 302, 303, 307, 308}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchError(Exception):
    """The input could not be downloaded; the message is safe to show to the client."""

    error_type = "file_download_error"


class FileTooLargeError(FetchError):
    error_type = "file_too_large"


class FetchTimeoutError(FetchError):
    error_type = "file_download_timeout"


class BlockedAddressError(FetchError):
    """The URL resolves to an address this service may not reach (private, loopback, metadata...)."""


class InvalidDataUriError(FetchError):
    pass


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_endpoint(entry: str) -> tuple[Network, int]:
    """`127.0.0.1:6379`, `127.0.0.0/8:6379` or `[::1]:6379` as (network, port); ValueError otherwise."""
    entry = entry.strip()
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\]:(?P<p6>\d+)|(?P<v4>[^:\[\]]+):(?P<p4>\d+)", entry)
    if match is None:
        raise ValueError("expected ADDRESS:PORT or CIDR:PORT (IPv6 in brackets)")
    address = match["v6"] or match["v4"]
    port = int(match["p6"] or match["p4"])
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    try:
        return ipaddress.ip_network(address, strict=False), port
    except ValueError as e:
        raise ValueError(f"{address!r} is not an IP address or CIDR") from e


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses outbound requests may reach: public ones, plus hosts and CIDRs allowlisted,
    minus the denied (address, port) pairs whatever else allows them.

    One exception to the denied pairs: a presigned URL of this service's own storage
    (`signed_prefixes`: `<endpoint>/<bucket>/<prefix>`, with a SigV4 signature in its query). The
    storage server checks that signature itself, so such a URL reaches nothing its sender was not
    given; every other request to that port (unsigned, another bucket, another path) is refused
    before a connection is made.
    """

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[Network, ...] = ()
    denied_endpoints: tuple[tuple[Network, int], ...] = ()
    signed_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_allowlist(cls, entries: Iterable[str], deny: Iterable[str] = (),
                       signed_prefixes: Iterable[str] = ()) -> AddressPolicy:
        hosts: set[str] = set()
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks), tuple(parse_endpoint(e) for e in deny), tuple(signed_prefixes))

    def own_signed_url(self, url: str) -> bool:
        """A presigned URL of this service's own storage (see the class docstring)."""
        parts = urllib.parse.urlsplit(url)
        signed = "X-Amz-Signature" in urllib.parse.parse_qs(parts.query)
        base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return signed and ".." not in parts.path and any(base.startswith(p) for p in self.signed_prefixes)

    def endpoint_denied(self, ip: IPAddress, port: int) -> bool:
        return any(
            port == denied_port and candidate in net
            for net, denied_port in self.denied_endpoints
            for candidate in _embedded_addresses(ip)
            if net.version == candidate.version
        )

    def address_allowed(self, ip: IPAddress) -> bool:
        if any(ip in net for net in self.allowed_networks if net.version == ip.version):
            return True
        return all(_is_public(candidate) for candidate in _embedded_addresses(ip))

    def resolve(self, host: str, port: int, own_signed_url: bool = False) -> list[IPAddress]:
        """The addresses `host` resolves to, all of which must be allowed; raises BlockedAddressError.
        `own_signed_url`: the request is a presigned URL of our own storage, which may reach a denied port."""
        name = host.lower().rstrip(".")
        try:
            literal: IPAddress | None = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
            except socket.gaierror as e:
                raise FetchError(f"Could not resolve host {host!r}.") from e
            addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
        if not own_signed_url and any(self.endpoint_denied(ip, port) for ip in addresses):
            raise BlockedAddressError(f"Host {host!r} port {port} is one of this service's own servers; refusing to fetch it.")
        if name in self.allowed_hosts:
            return addresses
        blocked = [ip for ip in addresses if not self.address_allowed(ip)]
        if blocked or not addresses:
            raise BlockedAddressError(f"Host {host!r} resolves to a private or reserved address; refusing to fetch it.")
        return addresses


def _is_public(ip: IPAddress) -> bool:
    return ip.is_global and not ip.is_multicast


def _embedded_addresses(ip: IPAddress) -> list[IPAddress]:
    """The address itself plus any IPv4 address tunnelled inside an IPv6 one (mapped, 6to4, Teredo, NAT64)."""
    out: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            out.append(ip.ipv4_mapped)
        if ip.sixtofour:
            out.append(ip.sixtofour)
        if ip.teredo:
            out.extend(ip.teredo)
        if ip in _NAT64:
            out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def _client(timeout_s: float) -> httpx.Client:
    # trust_env=False: an environment proxy would connect by name and defeat address pinning.
    # The default SSL context still honours SSL_CERT_FILE (OpenSSL reads it).
    timeout = httpx.Timeout(min(timeout_s, 30.0), connect=min(timeout_s, 10.0))
    return httpx.Client(trust_env=False, verify=ssl.create_default_context(), follow_redirects=False, timeout=timeout)


class _Watchdog:
    """Shuts down the sockets of one download when its deadline passes, interrupting any blocked read.

    Sockets are collected through httpx's `trace` extension as connections open; each is kept as a
    duplicate descriptor, because `shutdown` acts on the connection behind every descriptor of it
    (also once TLS has wrapped the original socket object).
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        raw = info["return_value"].get_extra_info("socket")
        if raw is None:
            return
        with self._lock:
            self._sockets.append(raw.dup())
            if self.fired:
                self._shutdown_all()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shutdown_all()

    def _shutdown_all(self) -> None:
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def check(self) -> None:
        if self.fired or time.monotonic() > self.deadline:
            raise FetchTimeoutError("Downloading video_url took too long.")


def _pinned_request(client: httpx.Client, method: str, url: httpx.URL, policy: AddressPolicy, **kwargs: Any) -> httpx.Request:
    if url.scheme not in ("http", "https") or not url.host:
        raise FetchError(f"Unsupported URL {str(url)[:100]!r}: only http and https can be fetched.")
    port = url.port or (443 if url.scheme == "https" else 80)
    address = policy.resolve(url.host, port, own_signed_url=policy.own_signed_url(str(url)))[0]
    headers = dict(kwargs.pop("headers", {}))
    headers["Host"] = url.netloc.decode("ascii")
    extensions: dict[str, Any] = {"sni_hostname": url.host} if url.scheme == "https" else {}
    extensions.update(kwargs.pop("extensions", {}))
    return client.build_request(method, url.copy_with(host=str(address)), headers=headers, extensions=extensions, **kwargs)


def guarded_post(
    url: str, *, json_body: Any, policy: AddressPolicy, timeout_s: float, headers: dict[str, str] | None = None
) -> httpx.Response:
    """One POST (no redirects followed) to a checked, pinned address. Used for webhooks."""
    with _client(timeout_s) as client:
        request = _pinned_request(client, "POST", httpx.URL(url), policy, json=json_body, headers=headers or {})
        return client.send(request)


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    size: int
    content_type: str
    name: str  # a file name suggested by the URL, for naming the result


def fetch_to_file(url: str, dest: Path, *, policy: AddressPolicy, max_bytes: int, timeout_s: float) -> FetchedFile:
    """Download an http(s) URL or decode a data: URI into `dest`."""
    if url.startswith("data:"):
        data, media_type = decode_data_uri(url, max_bytes)
        dest.write_bytes(data)
        return FetchedFile(dest, len(data), media_type, "video")
    current = httpx.URL(url)
    with _client(timeout_s) as client, _Watchdog(time.monotonic() + timeout_s) as watchdog:
        for _ in range(MAX_REDIRECTS + 1):
            request = _pinned_request(client, "GET", current, policy, extensions={"trace": watchdog.trace})
            try:
                response = client.send(request, stream=True)
            except httpx.HTTPError as e:
                watchdog.check()
                raise FetchError(f"Downloading video_url failed: {type(e).__name__}.") from e
            try:
                if response.status_code in _REDIRECT_CODES and "location" in response.headers:
                    current = current.join(response.headers["location"])
                    continue
                if response.status_code >= 400:
                    raise FetchError(f"Downloading video_url failed: HTTP {response.status_code}.")
                return _stream_to_file(response, dest, current, max_bytes=max_bytes, watchdog=watchdog)
            finally:
                response.close()
    raise FetchError(f"Downloading video_url failed: more than {MAX_REDIRECTS} redirects.")


def _stream_to_file(response: httpx.Response, dest: Path, url: httpx.URL, *, max_bytes: int, watchdog: _Watchdog) -> FetchedFile:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FileTooLargeError(f"The video is {int(declared)} bytes; the limit is {max_bytes}.")
    size = 0
    try:
        with dest.open("wb") as out:
            for chunk in response.iter_bytes(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise FileTooLargeError(f"The video is larger than the limit of {max_bytes} bytes.")
                watchdog.check()
                out.write(chunk)
    except httpx.HTTPError as e:
        watchdog.check()
        raise FetchError(f"Downloading video_url failed: {type(e).__name__}.") from e
    watchdog.check()  # a server that closed early when the socket was shut down looks like a short body
    content_type = response.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    return FetchedFile(dest, size, content_type, name_from_url(str(url)))


_DATA_URI = re.compile(r"^data:(?P<meta>[^,]*),(?P<payload>.*)$", re.DOTALL)


def decode_data_uri(uri: str, max_bytes: int) -> tuple[bytes, str]:
    """(bytes, media type) of a data: URI; the size is checked before decoding."""
    match = _DATA_URI.match(uri)
    if match is None:
        raise InvalidDataUriError("Malformed data: URI (no comma).")
    params = match["meta"].split(";")
    media_type = params[0].strip() or "text/plain"
    payload = match["payload"]
    is_base64 = any(p.strip().lower() == "base64" for p in params[1:])
    estimated = len(payload) * 3 // 4 if is_base64 else len(payload)
    if estimated > max_bytes + 3:
        raise FileTooLargeError(f"The video in the data: URI is larger than the limit of {max_bytes} bytes.")
    try:
        data = base64.b64decode(payload, validate=True) if is_base64 else urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as e:
        raise InvalidDataUriError("Malformed data: URI (bad base64).") from e
    if len(data) > max_bytes:
        raise FileTooLargeError(f"The video in the data: URI is larger than the limit of {max_bytes} bytes.")
    return data, media_type


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def name_from_url(url: str) -> str:
    """A safe file stem taken from the URL path (`clip` for .../clip.mp4), or `video`."""
    path = urllib.parse.urlsplit(url).path
    stem = Path(urllib.parse.unquote(path)).stem
    stem = _SAFE_NAME.sub("_", stem).strip("._")[:80]
    return stem or "video"
