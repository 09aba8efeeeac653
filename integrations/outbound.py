"""The one way Relais calls a host a merchant gave it (a WooCommerce store's address).

A merchant-given address is attacker-controlled input: left alone, a "store" at
``http://127.0.0.1:6379``, ``https://169.254.169.254/`` or ``https://10.0.0.1/`` turns Relais into
a proxy into its own network (and, with errors shown back, a port scanner). So every such call
goes through ``GuardedSession``:

- https only in production (plain http only where the policy allows it: development and test,
  where the stand-in store runs on ``http://127.0.0.1``);
- the host name is resolved *when the connection is opened*, every address is checked, and the
  socket is connected to the checked address itself, while TLS still verifies the certificate
  (and sends SNI) for the name. There is no separate pre-resolution a DNS rebinding could beat,
  and every new connection resolves again, so a later DNS change is caught;
- any address that is loopback, private, link-local, shared (CGNAT), multicast, reserved,
  unspecified, or an IPv4-mapped / 6to4 / NAT64 / Teredo wrapping of one refuses the whole name,
  unless the policy allows private addresses (``RELAIS_OUTBOUND_ALLOW_PRIVATE``, never in
  production);
- redirects are never followed (a 3xx is an error: the next hop would be unchecked), timeouts are
  short, the answer's size is capped;
- no proxy from the environment (a proxy would open the connection, not us).

Every failure is an ``OutboundError`` whose text is a plain reason meant for the merchant: never
the answer's body, an exception's text, or a URL (whose query string may hold API keys).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

from integrations.errors import InvalidRequestError

PRIVATE_ADDRESS = "the address resolves to a private network address"
NOT_HTTPS = "the store's address must start with https://"
BAD_ADDRESS = "this is not a store address (https://your-store.example)"
NOT_FOUND = "the store's address could not be found (no such domain name)"
REDIRECT = "the store answered with a redirect: enter the address the store really answers on"
CONNECT_FAILED = "could not connect to the store"
TIMED_OUT = "the store did not answer in time"
CERTIFICATE = "the store's HTTPS certificate could not be verified"
TOO_LARGE = "the store's answer was too large"
FAILED = "the request to the store failed"

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_BYTES = 8 * 1024 * 1024  # a page of 100 WooCommerce orders is ~1-2 MB
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")

Resolver = Callable[..., Sequence[tuple[Any, ...]]]


class OutboundError(Exception):
    """A call to a merchant-given host was refused or failed; ``str()`` is the plain ``reason``.

    ``transient``: the same call may work later (cannot connect, timed out, DNS failure); a
    refused address, a redirect or a plain-http address will not change by retrying.
    """

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class StoreUnreachable(InvalidRequestError):
    """What a client raises when the guard refuses for good (a private address, a redirect, plain
    http in production): retrying cannot help, the merchant must fix the address. Its text is the
    guard's plain reason and nothing else."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _system_resolver(host: str, port: int) -> Sequence[tuple[Any, ...]]:
    # Looked up at call time (not bound at import) so that the process's resolver is used.
    return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)


@dataclass(frozen=True)
class OutboundPolicy:
    """What a call to a merchant-given host may do. The default is production's: strict."""

    allow_private: bool = False
    https_only: bool = True
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_timeout: float = 60.0  # reading a whole answer, however slowly it drips
    max_bytes: int = MAX_BYTES
    resolver: Resolver = field(default=_system_resolver, compare=False)

    @classmethod
    def from_settings(cls, settings: Any) -> OutboundPolicy:
        """Production: https only, public addresses only, whatever else is set."""
        production = settings.environment == "production"
        allow = bool(getattr(settings, "outbound_allow_private", not production))
        return cls(allow_private=allow and not production, https_only=production)


def refused_address(address: str) -> bool:
    """True when ``address`` (an IP, as resolved) is not a public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return refused_address(str(embedded))
        if ip.teredo is not None or ip in _NAT64_LOCAL:
            return True
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def resolve_checked(host: str, port: int, policy: OutboundPolicy) -> list[tuple[int, str]]:
    """Every address ``host`` resolves to, as (family, ip); refuses the name if any is private."""
    try:
        answers = policy.resolver(host, port)
    except (OSError, UnicodeError):
        raise OutboundError(NOT_FOUND, transient=True) from None
    addresses: list[tuple[int, str]] = []
    for family, _type, _proto, _name, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = str(sockaddr[0])
        if not policy.allow_private and refused_address(ip):
            raise OutboundError(PRIVATE_ADDRESS)
        if (family, ip) not in addresses:
            addresses.append((family, ip))
    if not addresses:
        raise OutboundError(NOT_FOUND, transient=True)
    return addresses


def check_url(url: str, policy: OutboundPolicy) -> None:
    """Refuse ``url`` before storing it: scheme, shape, and where its name resolves today.

    A first answer for the merchant; the connection itself checks again (DNS may change).
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise OutboundError(BAD_ADDRESS) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError(BAD_ADDRESS)
    if policy.https_only and parts.scheme != "https":
        raise OutboundError(NOT_HTTPS)
    resolve_checked(parts.hostname, port or (443 if parts.scheme == "https" else 80), policy)


class _GuardedConnectionMixin:
    """urllib3 connection whose socket goes to a checked address of the name it was given."""

    policy: OutboundPolicy
    # provided by urllib3's HTTPConnection
    _dns_host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        last: OSError | None = None
        for _family, ip in resolve_checked(self._dns_host, self.port, self.policy):
            try:  # an IP literal: nothing is resolved again between the check and the connect
                return create_connection((ip, self.port), self.timeout, self.source_address, self.socket_options)
            except TimeoutError:
                raise ConnectTimeoutError(self, "connect timeout") from None
            except OSError as exc:
                last = exc
        raise NewConnectionError(self, "could not connect") from last  # type: ignore[arg-type]


class GuardedAdapter(HTTPAdapter):
    """A ``requests`` adapter whose pools open only guarded connections."""

    def __init__(self, policy: OutboundPolicy, **kwargs: Any) -> None:
        self.policy = policy
        http_conn = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), {"policy": policy})
        https_conn = type("GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), {"policy": policy})
        self._pools = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
        }
        super().__init__(max_retries=0, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(self._pools)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise OutboundError(FAILED)  # a proxy would connect in our place, unchecked

    def __getstate__(self) -> dict[str, Any]:  # pragma: no cover - sessions are not pickled
        raise TypeError("a guarded adapter is not picklable")


class GuardedSession(requests.Session):
    """A ``requests.Session`` for merchant-given hosts; see the module's rules."""

    def __init__(self, policy: OutboundPolicy, *, like: requests.Session | None = None) -> None:
        super().__init__()
        self.policy = policy
        self.trust_env = False
        if like is not None:  # the process's session: its User-Agent and trusted certificates
            self.headers.update(like.headers)
            self.verify = like.verify
            self.cert = like.cert
        adapter = GuardedAdapter(policy)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        text_url = url.decode() if isinstance(url, bytes) else str(url)
        scheme = urlsplit(text_url).scheme
        if scheme not in ("http", "https"):
            raise OutboundError(BAD_ADDRESS)
        if self.policy.https_only and scheme != "https":
            raise OutboundError(NOT_HTTPS)
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        kwargs["proxies"] = {}
        kwargs["timeout"] = self._timeout(kwargs.get("timeout"))
        started = time.monotonic()
        try:
            response = super().request(method, url, *args, **kwargs)
        except OutboundError:
            raise
        except requests.exceptions.RequestException as exc:
            raise _plain(exc) from None
        if response.status_code in REDIRECT_STATUSES:
            response.close()
            raise OutboundError(REDIRECT)
        self._read_capped(response, started)
        return response

    def _timeout(self, given: Any) -> tuple[float, float]:
        connect, read = self.policy.connect_timeout, self.policy.read_timeout
        if isinstance(given, tuple):
            return (min(given[0] or connect, connect), min(given[1] or read, read))
        if isinstance(given, (int, float)) and given > 0:
            return (min(float(given), connect), min(float(given), read))
        return (connect, read)

    def _read_capped(self, response: requests.Response, started: float) -> None:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.policy.max_bytes:
            response.close()
            raise OutboundError(TOO_LARGE)
        body = bytearray()
        try:
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > self.policy.max_bytes:
                    raise OutboundError(TOO_LARGE)
                if time.monotonic() - started > self.policy.total_timeout:
                    raise OutboundError(TIMED_OUT, transient=True)
        except OutboundError:
            response.close()
            raise
        except requests.exceptions.RequestException as exc:
            response.close()
            raise _plain(exc) from None
        response._content = bytes(body)  # what requests itself sets once it has read the body
        response._content_consumed = True


def _plain(exc: BaseException) -> OutboundError:
    """The merchant's reason for a ``requests`` failure (its own text names the URL: never shown)."""
    if isinstance(exc, requests.exceptions.Timeout):
        return OutboundError(TIMED_OUT, transient=True)
    if isinstance(exc, requests.exceptions.SSLError):
        return OutboundError(CERTIFICATE)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return OutboundError(CONNECT_FAILED, transient=True)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return OutboundError(CONNECT_FAILED, transient=True)
    return OutboundError(FAILED)


def guarded(http: requests.Session, policy: OutboundPolicy) -> GuardedSession:
    """``http`` itself when already guarded by ``policy``, else a guarded session like it."""
    if isinstance(http, GuardedSession) and http.policy == policy:
        return http
    return GuardedSession(policy, like=http)


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_KEYS = re.compile(r"\b(c[ks]_[0-9a-f]{8,}|oauth_[a-z_]+=\S+|consumer_(key|secret)=\S+)", re.IGNORECASE)


def merchant_text(exc: BaseException, limit: int = 300) -> str:
    """An error's text as it may be stored for the merchant: a plain reason as it is, anything
    else with URLs and credentials cut out and shortened (it may carry a URL with keys)."""
    if isinstance(exc, OutboundError):
        return exc.reason
    text = _URL.sub(lambda m: _origin(m.group(0)), str(exc))
    text = _KEYS.sub("[redacted]", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}" if parts.netloc else "[address]"
