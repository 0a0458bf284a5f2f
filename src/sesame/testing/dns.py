"""An authoritative DNS server for tests, on a loopback UDP port, answering from a mutable zone.

    with DnsServer() as dns_server:
        dns_server.add("_amazonses.example.test", "TXT", '"token"')
        settings.dns.nameservers = [dns_server.address]

Records are given in zone-file text (``"10 mx.example.test."``, ``'"v=spf1 mx ~all"'``), parsed by
dnspython. A name with no records of the asked type but others answers NOERROR with no data; an
unknown name answers NXDOMAIN; ``fail(name)`` makes a name answer SERVFAIL. CNAMEs are followed
within the zone, as a recursive resolver would hand them on. Only UDP: the answers tests need fit
(dnspython retries over TCP only when an answer is truncated, which these never are).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self._sock.settimeout(0.2)
        self._records: dict[tuple[dns.name.Name, int], list[dns.rdata.Rdata]] = {}
        self._failing: set[dns.name.Name] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.queries: list[tuple[str, str]] = []

    @property
    def address(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"{host}:{port}"

    def add(self, name: str, rtype: str, value: str) -> None:
        rdtype = dns.rdatatype.from_text(rtype)
        rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, value)
        with self._lock:
            self._records.setdefault((dns.name.from_text(name), rdtype), []).append(rdata)

    def add_zone_lines(self, lines: str) -> None:
        """Records as ``sesame identities records`` prints them: NAME TTL IN TYPE VALUE."""
        for line in lines.splitlines():
            if line.strip():
                name, _ttl, _cls, rtype, value = line.split(None, 4)
                self.add(name, rtype, value)

    def remove(self, name: str) -> None:
        key = dns.name.from_text(name)
        with self._lock:
            for k in [k for k in self._records if k[0] == key]:
                del self._records[k]

    def fail(self, name: str) -> None:
        with self._lock:
            self._failing.add(dns.name.from_text(name))

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | dns.flags.RA
        question = query.question[0]
        name, rdtype = question.name, question.rdtype
        with self._lock:
            if name in self._failing:
                response.set_rcode(dns.rcode.SERVFAIL)
                return response
            for _ in range(8):  # follow CNAMEs inside the zone
                found = self._records.get((name, rdtype))
                if found:
                    response.answer.append(dns.rrset.from_rdata_list(name, 60, found))
                    return response
                cname = self._records.get((name, dns.rdatatype.CNAME))
                if not cname:
                    break
                response.answer.append(dns.rrset.from_rdata_list(name, 60, cname))
                name = cname[0].target  # type: ignore[attr-defined]
            if not any(k[0] == name for k in self._records):
                response.set_rcode(dns.rcode.NXDOMAIN)
        return response

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue  # not DNS: a real server would drop it too
            q = query.question[0]
            self.queries.append((q.name.to_text(), dns.rdatatype.to_text(q.rdtype)))
            self._sock.sendto(self._answer(query).to_wire(), peer)

    def start(self) -> DnsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
