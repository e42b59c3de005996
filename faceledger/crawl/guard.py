"""The SSRF guard: the crawler never connects to an address an administrator has not allowed.

A crawl fetches URLs that strangers wrote (links, redirects, robots.txt), so any of them may
point at the machine's own services, the local network or a cloud metadata endpoint. Checking
a URL's host name is not enough: a public name can resolve to 10.0.0.1, and a name can
resolve differently twice (DNS rebinding). So the check runs where the connection is made:
`GuardedBackend` wraps httpcore's network backend, resolves the host itself, checks *every*
resolved address and then connects to one vetted IP, never to the name. Because the crawler
follows redirects itself, one request at a time, every hop passes through here again.

Refused: private, loopback, link-local (including the 169.254.169.254 metadata service),
multicast, reserved, unspecified, shared (CGNAT) and documentation ranges, and the same
addresses hidden inside IPv6 (IPv4-mapped, 6to4, NAT64): anything `ipaddress` does not call
global. An address inside an allowed CIDR passes; that is the administrator's explicit
decision (tests allow 127.0.0.0/8 only).

TLS still verifies the original host name: httpcore passes the URL's host as the TLS server
name, whatever address the stream is connected to. Proxies are never used (a proxy would be
the address actually connected to), so the client must be built with `trust_env=False`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from faceledger import errors

__all__ = [
    "AddressGuard",
    "GuardedBackend",
    "Refused",
    "ResolveError",
    "Resolver",
    "check_url",
    "guarded_transport",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Sequence[str]]
"""Host name and port -> IP address strings; blocking, run in a worker thread."""

_METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(errors.Refused):
    """A URL or address the crawler will not touch; raised before any connection is made.

    `reason` is a stable slug for stats (`private_address`, `bad_scheme`, `credentials`, ...);
    `detail` says which rule fired, for humans.
    """

    code = "source_refused"

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ResolveError(httpcore.ConnectError, errors.FaceledgerError):
    """The host name did not resolve; httpx reports it as a ConnectError caused by this."""


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the operating system, returning each address once, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for info in infos:
        seen[str(info[4][0])] = None
    return list(seen)


def check_url(url: str) -> None:
    """Refuse URLs the crawler never requests: non-http(s) schemes and embedded credentials.

    Credentials in a URL would be sent to whatever the URL names, and a crawl of public pages
    has no business authenticating anywhere.
    """
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:
        raise Refused("bad_url", str(exc)) from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise Refused("bad_scheme", f"scheme {parts.scheme or '(none)'!r} is not http(s)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise Refused("credentials", "URLs with user names or passwords are not fetched")
    if not hostname:
        raise Refused("bad_url", "no host")


class AddressGuard:
    """Decides whether an IP address may be connected to, and resolves names to vetted IPs."""

    def __init__(
        self,
        allowed_cidrs: Iterable[str] = (),
        resolver: Resolver | None = None,
        resolve_timeout: float = 10.0,
    ) -> None:
        self.allowed: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(c, strict=False) for c in allowed_cidrs
        )
        self.resolver: Resolver = resolver or system_resolver
        self.resolve_timeout = resolve_timeout

    def why_refused(self, address: str) -> str | None:
        """None if `address` may be connected to, else the rule that forbids it."""
        try:
            ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not an IP address"
        if self._allowed(ip):
            return None
        for candidate in _embedded(ip):
            if self._allowed(candidate):
                return None
            problem = _classify(candidate)
            if problem:
                return f"{address} is {problem}"
        return None

    async def vetted_addresses(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to, all checked; raises if any is refused.

        All addresses must pass, not just the first: a name that mixes a public and a private
        address is hostile, and which one a later connection picks is not ours to predict.
        """
        literal = host.strip("[]")
        try:
            ipaddress.ip_address(literal.split("%", 1)[0])
        except ValueError:
            addresses = await self._resolve(host, port)
        else:
            addresses = [literal]
        if not addresses:
            raise ResolveError(f"{host} resolved to no address")
        for address in addresses:
            problem = self.why_refused(address)
            if problem:
                raise Refused("private_address", f"{host} -> {problem}")
        return addresses

    async def _resolve(self, host: str, port: int) -> list[str]:
        try:
            async with asyncio.timeout(self.resolve_timeout):
                return list(await asyncio.to_thread(self.resolver, host, port))
        except (OSError, UnicodeError, TimeoutError) as exc:
            raise ResolveError(f"cannot resolve {host}: {exc}") from exc

    def _allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allowed)


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """`ip` itself plus any IPv4 address it carries (mapped, 6to4, NAT64)."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            found.insert(0, ip.ipv4_mapped)
        if ip.sixtofour is not None:
            found.append(ip.sixtofour)
        if ip in _NAT64:
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _classify(ip: IPAddress) -> str | None:
    """Name the forbidden class `ip` falls in, or None for an ordinary global address."""
    if ip in _METADATA:
        return "a cloud metadata address"
    checks = (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    )
    for attribute, name in checks:
        if getattr(ip, attribute):
            return f"a {name} address"
    if not ip.is_global:
        return "not a global address"
    return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that vets the address before every TCP connection.

    `inner` does the real connecting (httpcore's anyio backend by default); tests inject a
    recorder there to prove a refused address never reaches it.
    """

    def __init__(
        self, guard: AddressGuard, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.guard = guard
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.guard.vetted_addresses(host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("bad_scheme", "unix sockets are never used by the crawler")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx transport whose connection pool connects only through `GuardedBackend`.

    httpx does not let a caller pass a network backend, so the pool it builds is replaced by
    an equivalent one that uses ours; everything else (exception mapping, streaming) is
    httpx's own. Requests are also checked for scheme and credentials here, so no code path
    can bypass `check_url`.
    """

    def __init__(self, backend: GuardedBackend, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        check_url(str(request.url))
        return await super().handle_async_request(request)


def guarded_transport(
    guard: AddressGuard,
    *,
    max_connections: int = 16,
    inner: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncBaseTransport:
    """An httpx transport that refuses forbidden URLs and addresses before connecting."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=None)
    return _GuardedTransport(GuardedBackend(guard, inner), limits)
