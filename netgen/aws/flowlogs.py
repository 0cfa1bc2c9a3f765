"""VPC Flow Logs files read for `netgen import-grants`: the accepted TCP and UDP records between IPv4 addresses.

`read_flow_logs` reads the default format (version 2); a header line, comments, NODATA and SKIPDATA records,
REJECTs, other protocols and IPv6 addresses are skipped, and a file that cannot be read or a line that is no
such record is a `FlowLogError` (the command reports it as a usage error). `aggregate` folds records that
differ only in an ephemeral source port, so that a client's many connections to one service port are one
record that counts them. netgen/aws/import_grants.py matches the records with the inventory's services.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from pathlib import Path

from netgen.aws.coverage import PROTOCOL_NAMES

EPHEMERAL_FIRST = 32768  # Linux's default ephemeral port range starts here (node ports end at 32767)


@dataclass(frozen=True)
class FlowRecord:
    source: IPv4Address
    destination: IPv4Address
    source_port: int
    destination_port: int
    protocol: str
    records: int = 1  # how many records this stands for


class FlowLogError(Exception):
    """A flow-log file that cannot be read, or a line of it that is no version 2 record."""


def read_flow_logs(path: Path) -> Iterator[FlowRecord]:
    """ACCEPTed TCP and UDP records of a VPC Flow Logs file in the default format (version 2: version account-id
    interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status). A header
    line, NODATA and SKIPDATA records, REJECTs and other protocols are skipped."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowLogError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0] == "version" or line.lstrip().startswith("#"):
            continue
        if len(fields) < 14 or fields[0] != "2":
            raise FlowLogError(f"{path}:{number}: not a version 2 flow log record in the default format")
        if fields[12] != "ACCEPT" or fields[13] != "OK":
            continue
        protocol = PROTOCOL_NAMES.get(fields[7], "")
        if protocol not in ("tcp", "udp"):
            continue
        try:
            source, destination = ip_address(fields[3]), ip_address(fields[4])
            ports = int(fields[5]), int(fields[6])
        except ValueError:
            raise FlowLogError(f"{path}:{number}: bad address or port") from None
        if isinstance(source, IPv4Address) and isinstance(destination, IPv4Address):
            yield FlowRecord(source, destination, ports[0], ports[1], protocol)


def aggregate(records: list[FlowRecord]) -> list[FlowRecord]:
    """Records by (source, destination, protocol, destination port), ephemeral source ports folded together."""
    counts: dict[tuple, int] = defaultdict(int)
    first: dict[tuple, FlowRecord] = {}
    for r in records:
        key = (r.source, r.destination, r.protocol, r.destination_port,
               r.source_port if r.source_port < EPHEMERAL_FIRST else -1)
        counts[key] += 1
        first.setdefault(key, r)
    return [FlowRecord(r.source, r.destination, r.source_port, r.destination_port, r.protocol, counts[k])
            for k, r in first.items()]
