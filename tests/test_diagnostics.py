"""Every diagnostic code up to the build stage has a failing fixture, located to the exact line and column.

Each case starts from the example estate (or an empty folder), applies text edits or adds files, runs the
pipeline, and expects one diagnostic at an exact file:line:column. A case also lists the other codes its
fixture may legitimately cause, so that a cascade of unrelated diagnostics fails the test too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from conftest import EXAMPLE_AS_OF, EXAMPLE_SPECS, copy_example_specs, diagnose_specs, edit_spec, run_cli

from netgen.diagnostics import CODES, Severity
from netgen.loader import MAX_FILE_BYTES, MAX_FOLDER_DEPTH
from netgen.validate_grants import MAX_PORTS_PER_GRANT

# NG2xx codes are reported by `netgen build` (quotas, routing), not by the spec/validation layer; their
# fixtures belong with the build targets' tests.
BUILD_STAGE_CODES = frozenset(code for code in CODES if code.startswith("NG2"))

HEAD = "apiVersion: netgen.dev/v1alpha1\n"


@dataclass(frozen=True)
class Case:
    id: str
    code: str
    file: str  # relative to the specs folder
    line: int
    column: int
    edits: tuple[tuple[str, str, str], ...] = ()  # (file, old, new) applied to the example estate
    files: dict[str, str | bytes] = field(default_factory=dict)  # files to add, relative to specs
    symlinks: dict[str, str] = field(default_factory=dict)  # link -> target
    base: str = "example"  # "example" or "empty"
    as_of: date = EXAMPLE_AS_OF
    also: frozenset[str] = frozenset()  # other codes the fixture may legitimately cause
    message: str = ""  # a substring the diagnostic's message must contain ({specs}: the spec folder's path)


def _billion_laughs() -> str:
    lines = ["# a comment before the document", "---", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _nested(depth: int) -> str:
    """A mapping nested depth levels deep, within libyaml's own limit but beyond Python's recursion limit."""
    return HEAD + "kind: Account\nmetadata: " + "[" * depth + "]" * depth + "\n"


GRANT = """apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: {name}
spec:
  owner: team-test
  reason: a test grant
  from: {from_}
  to: {to}
"""

TGW = HEAD + """kind: TransitGateway
metadata:
  name: tgw-use1
spec:
  account: acme-legacy
  region: {region}
  transitGatewayId: tgw-0e100000000000001
  routeTables: [tgw-rtb-0e100000000000011]
  attachments:
    - {{vpc: {vpc}, attachmentId: tgw-attach-0e100000000000021, routeTable: {table}}}
"""

CASES: list[Case] = [
    # ---- loading -------------------------------------------------------------------------------------------
    Case("NG001-column-in-characters", "NG001", "bad.yaml", 4, 14, base="empty",
         files={"bad.yaml": (HEAD + "kind: Account\nmetadata:\n  name: caf\u00e9-").encode() + b"\xff\n"},
         message="0xff"),
    Case("NG001-after-bom", "NG001", "bom.yaml", 2, 5, base="empty",
         files={"bom.yaml": b"\xef\xbb\xbf# comment\nab: \xff\n"}, message="0xff"),
    # Spec-looking files that are not read: a warning each, at the file (or at the apiVersion beside specs/).
    Case("NG008-backup-name", "NG008", "access/billing.yaml.bak", 0, 0, message="only files named *.yaml or *.yml",
         files={"access/billing.yaml.bak": GRANT.format(name="old", from_="{hostGroup: billing}",
                                                        to="{service: payments/payments-api}")}),
    Case("NG008-text-suffix", "NG008", "inventory/hosts.yml.txt", 0, 0, files={"inventory/hosts.yml.txt": "x: 1\n"}),
    Case("NG008-outside-specs", "NG008", "../extra-grants.yaml", 1, 13, message="outside the spec folder",
         files={"../extra-grants.yaml": GRANT.format(name="stray", from_="{hostGroup: billing}",
                                                     to="{service: payments/payments-api}")}),
    # A file that does not parse contributes no document; settings and grants are referenced by nothing.
    Case("NG002-tab", "NG002", "inventory/settings.yaml", 7, 1,
         edits=(("inventory/settings.yaml", "  broadestPrefix: 16", "\tbroadestPrefix: 16"),),
         message="tabs are not allowed"),
    Case("NG002-unclosed-flow", "NG002", "access/billing.yaml", 10, 53,
         edits=(("access/billing.yaml", "to: {service: payments/payments-api, ports: [https]}",
                 "to: {service: payments/payments-api, ports: [https}"),)),
    Case("NG003", "NG003", "inventory/accounts.yaml", 10, 3,
         edits=(("inventory/accounts.yaml", "  profile: acme-legacy\n",
                 "  profile: acme-legacy\n  profile: other\n"),),
         message="first defined at line 9, column 3"),
    Case("NG004-alias-bomb", "NG004", "bomb.yaml", 3, 1, base="empty", files={"bomb.yaml": _billion_laughs()}),
    Case("NG004-too-deep", "NG004", "deep.yaml", 1, 1, base="empty", files={"deep.yaml": _nested(900)},
         message="nested too deeply"),
    Case("NG004-too-large", "NG004", "big.yaml", 1, 1, base="empty",
         files={"big.yaml": b"#" * (MAX_FILE_BYTES + 1)}),
    Case("NG005-python-tag", "NG005", "inventory/accounts.yaml", 9, 12,
         edits=(("inventory/accounts.yaml", "  profile: acme-legacy\n",
                 '  profile: !!python/object/apply:os.system ["echo pwned"]\n'),),
         also=frozenset({"NG012"})),
    Case("NG005-merge-key", "NG005", "inventory/accounts.yaml", 8, 3,
         edits=(("inventory/accounts.yaml", 'spec:\n  accountId: "123456789012"\n',
                 'spec:\n  accountId: "123456789012"\n  <<: {profile: x}\n'),), message="merge keys"),
    Case("NG005-non-string-key", "NG005", "inventory/settings.yaml", 11, 3,  # 'on' is a YAML 1.1 boolean
         edits=(("inventory/settings.yaml", "50 routes per route table\n", "50 routes per route table\n  on: 1\n"),),
         message="plain strings"),
    Case("NG005-mistyped-tag", "NG005", "inventory/settings.yaml", 7, 19,
         edits=(("inventory/settings.yaml", "broadestPrefix: 16", "broadestPrefix: !!int sixteen"),),
         also=frozenset({"NG012"})),
    Case("NG006", "NG006", "access/list.yaml", 3, 1, files={"access/list.yaml": "# a list\n---\n- a\n- b\n"}),
    # One mistake, one error: what no longer has a name to read (a document that is not a mapping, one without
    # metadata or without its namespace, a key written twice) is not also reported where it is referred to
    Case("NG006-nameless", "NG006", "inventory/vpcs.yaml", 13, 1,
         edits=(("inventory/vpcs.yaml", "apiVersion: netgen.dev/v1alpha1\nkind: Vpc\nmetadata:\n  name: legacy-euw1\n"
                 "spec:\n  account: acme-legacy\n  region: eu-west-1\n  vpcId: vpc-0b2c3d4e5f6071829\n"
                 "  cidrs: [10.20.0.0/16]\n  routeTables: [rtb-0b22c33d44e55f661]\n", "- legacy-euw1\n"),)),
    Case("NG003-block-key-twice", "NG003", "inventory/vpcs.yaml", 7, 1, message="first defined at line 6",
         edits=(("inventory/vpcs.yaml", "name: legacy-use1\nspec:\n  account: acme-legacy\n  region: us-east-1\n",
                 "name: legacy-use1\nspec:\nspec:\n  account: acme-legacy\n  region: us-east-1\n"),)),
    Case("NG007-dangling-symlink", "NG007", "access/gone.yaml", 0, 0,
         symlinks={"access/gone.yaml": "no-such-file.yaml"}),
    # Hostile and careless input (issue 20): the other limits, at sizes that run in a moment, are in
    # tests/test_loader_limits.py.
    Case("NG007-folders-too-deep", "NG007", "/".join(["d"] * (MAX_FOLDER_DEPTH + 1)), 0, 0, base="empty",
         files={"/".join(["d"] * 40) + "/x.yaml": "a: 1\n"}, message="not entered"),
    Case("NG002-nul-byte", "NG002", "inventory/settings.yaml", 7, 20, message="#x0000",
         edits=(("inventory/settings.yaml", "broadestPrefix: 16", "broadestPrefix: 1\x006"),)),
    Case("NG009-octal-port", "NG009", "inventory/services.yaml", 11, 27, message="it reads as 291, not 443",
         edits=(("inventory/services.yaml", "payments-api}\n  ports:\n    - {name: https, port: 443,",
                 "payments-api}\n  ports:\n    - {name: https, port: 0443,"),)),
    Case("NG009-base-60-port", "NG009", "access/ledger.yaml", 30, 35, message="it reads as 1342",
         edits=(("access/ledger.yaml", "to: {host: erp-euw1-01, ports: [22]}",
                 "to: {host: erp-euw1-01, ports: [22:22]}"),)),
    # ---- shape ---------------------------------------------------------------------------------------------
    Case("NG010", "NG010", "inventory/settings.yaml", 2, 13,
         edits=(("inventory/settings.yaml", "apiVersion: netgen.dev/v1alpha1", "apiVersion: netgen.dev/v1"),),
         message="'netgen.dev/v1'"),
    Case("NG010-missing", "NG010", "access/extra.yaml", 2, 1,
         files={"access/extra.yaml": "# no apiVersion\nkind: Grant\nmetadata: {name: x}\n"}, message="missing"),
    Case("NG011", "NG011", "inventory/accounts.yaml", 3, 7,
         edits=(("inventory/accounts.yaml", "kind: Account\nmetadata:\n  name: acme-legacy",
                 "kind: Acount\nmetadata:\n  name: acme-legacy"),), message="did you mean 'Account'"),
    # One mistake, one error: nothing that names the host is reported unknown (its kind is not known either)
    Case("NG011-misspelled-kind", "NG011", "inventory/hosts-euw1.yaml", 3, 7, message="did you mean 'LegacyHost'",
         edits=(("inventory/hosts-euw1.yaml", "kind: LegacyHost\nmetadata:\n  name: db-euw1-01\n",
                 "kind: Legacyhost\nmetadata:\n  name: db-euw1-01\n"),)),
    Case("NG012-range", "NG012", "inventory/settings.yaml", 7, 19,
         edits=(("inventory/settings.yaml", "broadestPrefix: 16", "broadestPrefix: 40"),)),
    Case("NG012-required", "NG012", "inventory/security-groups.yaml", 7, 3,
         edits=(("inventory/security-groups.yaml", "  vpc: legacy-use1\n  groupId: sg-0a1000000000000a1\n",
                 "  vpc: legacy-use1\n"),), message="'groupId' is required in spec"),
    Case("NG012-impossible-date", "NG012", "access/payments.yaml", 19, 12,
         edits=(("access/payments.yaml", "expires: 2027-09-30", "expires: 2027-02-30"),), message="not a date"),
    # (one mistake, one error: see NG006-nameless)
    Case("NG012-no-metadata", "NG012", "inventory/vpcs.yaml", 13, 1, message="'metadata' is required",
         edits=(("inventory/vpcs.yaml", "metadata:\n  name: legacy-euw1\n", ""),)),
    Case("NG012-no-namespace", "NG012", "inventory/workloads.yaml", 5, 3, message="'namespace' is required",
         edits=(("inventory/workloads.yaml", "  name: settlement-worker\n  namespace: payments\n",
                 "  name: settlement-worker\n"),)),
    Case("NG013", "NG013", "inventory/accounts.yaml", 9, 3,
         edits=(("inventory/accounts.yaml", "  profile: acme-legacy\n", "  profiles: acme-legacy\n"),),
         message="did you mean 'profile'"),
    Case("NG014-account-id", "NG014", "inventory/accounts.yaml", 7, 14,
         edits=(("inventory/accounts.yaml", '"123456789012"', '"12345678901"'),)),
    Case("NG014-vpc-id", "NG014", "inventory/vpcs.yaml", 9, 10,
         edits=(("inventory/vpcs.yaml", "vpc-0a1b2c3d4e5f60718", "vpc-0A1B"),)),
    # ---- semantics -----------------------------------------------------------------------------------------
    Case("NG101-name", "NG101", "inventory/more-accounts.yaml", 4, 9,
         files={"inventory/more-accounts.yaml": HEAD + "kind: Account\nmetadata:\n  name: acme-legacy\nspec:\n"
                "  accountId: \"333333333333\"\n"
                "  peeringAcceptRoleArn: arn:aws:iam::333333333333:role/x\n"},
         message="inventory/accounts.yaml:5:9"),
    # One mistake, one error: a document written twice is one duplicate name (not also its ids)
    Case("NG101-document-twice", "NG101", "inventory/zz-again.yaml", 4, 9, message="already defined",
         files={"inventory/zz-again.yaml": HEAD + "kind: SecurityGroup\nmetadata:\n  name: legacy-db-use1\nspec:\n"
                "  vpc: legacy-use1\n  groupId: sg-0a1000000000000a1\n"}),
    Case("NG101-address", "NG101", "inventory/hosts-euw1.yaml", 19, 12,
         edits=(("inventory/hosts-euw1.yaml", "address: 10.20.10.12", "address: 10.20.10.11"),)),
    Case("NG101-port-name", "NG101", "inventory/services.yaml", 29, 14,
         edits=(("inventory/services.yaml", "- {name: metrics, port: 9102}", "- {name: grpc, port: 9102}"),),
         also=frozenset({"NG109"})),
    Case("NG102", "NG102", "inventory/settings.yaml", 5, 9,
         edits=(("inventory/settings.yaml", "name: acme", "name: ACME"),)),
    Case("NG102-namespace-key", "NG102", "inventory/clusters.yaml", 18, 5,
         edits=(("inventory/clusters.yaml", "    search: {ingress: open, egress: open}",
                 "    Search: {ingress: open, egress: open}"),)),
    Case("NG103-host-bits", "NG103", "inventory/clusters.yaml", 8, 14,
         edits=(("inventory/clusters.yaml", "podCidrs: [10.40.64.0/18]", "podCidrs: [10.40.64.1/18]"),),
         message="did you mean '10.40.64.0/18'"),
    # One mistake, one error: the VPC's hosts are not also reported outside it
    Case("NG103-vpc-host-bits", "NG103", "inventory/vpcs.yaml", 21, 11, message="did you mean '10.20.0.0/16'",
         edits=(("inventory/vpcs.yaml", "cidrs: [10.20.0.0/16]", "cidrs: [10.20.0.1/16]"),)),
    Case("NG103-address", "NG103", "inventory/hosts-use1.yaml", 9, 12,
         edits=(("inventory/hosts-use1.yaml", "address: 10.10.10.11", "address: 10.10.10.256"),)),
    Case("NG104", "NG104", "inventory/vpcs.yaml", 18, 12,
         edits=(("inventory/vpcs.yaml", "  account: acme-legacy\n  region: eu-west-1",
                 "  account: acme-legacyy\n  region: eu-west-1"),), message="did you mean 'acme-legacy'"),
    Case("NG104-host-group", "NG104", "access/zz-db.yaml", 8, 21,
         files={"access/zz-db.yaml": GRANT.format(name="to-db", from_="{hostGroup: database}",
                                                  to="{service: payments/payments-api}")},
         message="unknown HostGroup 'database' (did you mean 'databases' or 'databases-eu'?); hosts labelled "
                 "role=database: db-euw1-01, db-euw1-02, db-use1-01, db-use1-02 (a HostGroup with "
                 "selector.matchLabels {role: database} holds them)"),
    Case("NG105", "NG105", "access/payments.yaml", 9, 20,
         files={"inventory/more-workloads.yaml": HEAD + "kind: Workload\nmetadata:\n  name: settlement-worker\n"
                "  namespace: payments\nspec:\n  cluster: prod-usw2\n  podSelector: {app: settlement}\n"},
         message="prod-usw2/payments/settlement-worker"),
    Case("NG106", "NG106", "inventory/hosts-euw1.yaml", 9, 12,
         edits=(("inventory/hosts-euw1.yaml", "address: 10.20.10.11", "address: 10.30.10.11"),)),
    Case("NG107", "NG107", "access/ledger.yaml", 2, 1,
         edits=(("inventory/vpcs.yaml", "cidrs: [10.20.0.0/16]", "cidrs: [10.20.0.0/16, 10.40.240.0/24]"),),
         message="'legacy-euw1' and 'k8s-use1'"),
    Case("NG108-range", "NG108", "access/ledger.yaml", 30, 35,
         edits=(("access/ledger.yaml", "to: {host: erp-euw1-01, ports: [22]}",
                 "to: {host: erp-euw1-01, ports: [70000]}"),)),
    Case("NG108-missing", "NG108", "access/ledger.yaml", 30, 7,
         edits=(("access/ledger.yaml", "to: {host: erp-euw1-01, ports: [22]}", "to: {host: erp-euw1-01}"),)),
    Case("NG108-too-many-ports", "NG108", "access/ledger.yaml", 30, 35 + 5 * MAX_PORTS_PER_GRANT,
         message=f"at most {MAX_PORTS_PER_GRANT:,} ports, and this one {MAX_PORTS_PER_GRANT + 1:,}",
         edits=(("access/ledger.yaml", "to: {host: erp-euw1-01, ports: [22]}", "to: {host: erp-euw1-01, ports: ["
                 + ",".join(str(1000 + 2 * i) for i in range(MAX_PORTS_PER_GRANT + 1)) + "]}"),)),
    Case("NG108-syntax", "NG108", "access/search.yaml", 20, 39,
         edits=(("access/search.yaml", '"9000-9003"', '"9000:9003"'),)),
    Case("NG123-trailing-newline", "NG123", "access/ledger.yaml", 30, 35,
         edits=(("access/ledger.yaml", "to: {host: erp-euw1-01, ports: [22]}",
                 'to: {host: erp-euw1-01, ports: ["22\\n"]}'),)),
    Case("NG109", "NG109", "access/billing.yaml", 10, 48,
         edits=(("access/billing.yaml", "ports: [https]", "ports: [htps]"),), message="did you mean 'https'"),
    # A port named by number is the service's port, target port or node port; when none (or two) answer, the
    # message names the ports to write.
    Case("NG109-number", "NG109", "access/billing.yaml", 10, 48,
         edits=(("access/billing.yaml", "ports: [https]", "ports: [8080]"),),
         message="has no tcp port 8080; name one of its ports: https (tcp/443 -> 8443)"),
    Case("NG109-number-ambiguous", "NG109", "access/observability.yaml", 10, 47,
         edits=(("inventory/services.yaml", "- {name: metrics, port: 9102}",
                 "- {name: metrics, port: 9102, targetPort: 9090}"),
                ("access/observability.yaml", "fraud-score, ports: [metrics]", "fraud-score, ports: [9090]")),
         message="port 9090 is ambiguous on service 'prod-use1/payments/fraud-score': it is the port of 'grpc' and "
                 "the target port of 'metrics'; name the one you mean"),
    Case("NG109-number-protocol", "NG109", "access/observability.yaml", 10, 47,
         edits=(("access/observability.yaml", "fraud-score, ports: [metrics]", 'fraud-score, ports: ["9102/udp"]'),),
         message="has no udp port 9102 (its 9102 is tcp: write '9102'); name one of its ports: grpc (tcp/9090), "
                 "metrics (tcp/9102)"),
    Case("NG110", "NG110", "access/billing.yaml", 2, 1,
         edits=(("inventory/settings.yaml", "broadestPrefix: 16", "broadestPrefix: 19"),),
         message="10.40.64.0/18"),
    Case("NG111", "NG111", "access/payments.yaml", 19, 12, as_of=date(2027, 10, 1)),
    Case("NG112", "NG112", "access/zz-dup.yaml", 4, 9,
         files={"access/zz-dup.yaml": GRANT.format(name="dup-billing", from_="{hostGroup: billing}",
                                                   to="{service: payments/payments-api, ports: [https]}")},
         message="billing-to-payments-api"),
    Case("NG113-host-to-host", "NG113", "access/zz-bad.yaml", 9, 7,
         files={"access/zz-bad.yaml": GRANT.format(name="host-to-host", from_="{host: erp-euw1-01}",
                                                   to="{host: db-euw1-01, ports: [22]}")}),
    Case("NG113-service-and-host", "NG113", "access/zz-bad.yaml", 9, 7,
         files={"access/zz-bad.yaml": GRANT.format(name="both", from_="{host: erp-euw1-01}",
                                                   to="{service: ledger/ledger-export, host: db-euw1-01}")}),
    Case("NG114", "NG114", "inventory/more-workloads.yaml", 5, 14,
         files={"inventory/more-workloads.yaml": HEAD + "kind: Workload\nmetadata:\n  name: cron\n"
                "  namespace: paymnts\nspec:\n  cluster: prod-use1\n  podSelector: {app: cron}\n"},
         message="did you mean 'payments'"),
    Case("NG114-how-to-declare", "NG114", "inventory/more-workloads.yaml", 5, 14,
         files={"inventory/more-workloads.yaml": HEAD + "kind: Workload\nmetadata:\n  name: cron\n"
                "  namespace: batch\nspec:\n  cluster: prod-use1\n  podSelector: {app: cron}\n"},
         message="declare it in the cluster's namespaces (" + "{specs}/inventory/clusters.yaml:16:5) with how "
                 "NetworkPolicy is run there in each direction, e.g. 'batch: {ingress: default-deny, egress: open}'"),
    Case("NG114-what-modes-mean", "NG114", "inventory/more-workloads.yaml", 5, 14,
         files={"inventory/more-workloads.yaml": HEAD + "kind: Workload\nmetadata:\n  name: cron\n"
                "  namespace: batch\nspec:\n  cluster: prod-use1\n  podSelector: {app: cron}\n"},
         message="default-deny: a default-deny policy already isolates its pods in that direction, and netgen "
                 "writes allow policies for the granted flows; open: nothing isolates them, traffic is already "
                 "allowed, and netgen writes no policy"),
    Case("NG115", "NG115", "inventory/host-groups.yaml", 42, 3,
         edits=(("inventory/host-groups.yaml", "{role: monitoring}", "{role: monitor}"),)),
    Case("NG116", "NG116", "inventory/vpcs.yaml", 10, 10,
         edits=(("inventory/vpcs.yaml", "cidrs: [10.10.0.0/16, 10.11.0.0/16]",
                 "cidrs: [10.10.0.0/16, 10.11.0.0/16, 10.11.128.0/17]"),)),
    Case("NG117-missing-node-port", "NG117", "inventory/services.yaml", 73, 7,
         edits=(("inventory/services.yaml", "- {name: http, port: 9200, nodePort: 30920}",
                 "- {name: http, port: 9200}"),)),
    Case("NG117-node-port-on-pod-ip", "NG117", "inventory/services.yaml", 59, 42,
         edits=(("inventory/services.yaml", "- {name: sftp, port: 2222}",
                 "- {name: sftp, port: 2222, nodePort: 30222}"),)),
    Case("NG118", "NG118", "inventory/hosts-euw1.yaml", 70, 18,
         edits=(("inventory/hosts-euw1.yaml", "securityGroup: legacy-erp-euw1", "securityGroup: legacy-db-use1"),)),
    Case("NG119", "NG119", "inventory/zz-settings.yaml", 1, 1,
         files={"inventory/zz-settings.yaml": HEAD + "kind: Settings\nmetadata: {name: more}\nspec: {}\n"},
         message="inventory/settings.yaml:2:1"),
    Case("NG120", "NG120", "access/payments.yaml", 19, 12, as_of=date(2027, 9, 20)),
    Case("NG121", "NG121", "access/ledger.yaml", 22, 1,
         edits=(("access/ledger.yaml", "to: {host: erp-euw1-01, ports: [22]}",
                 'to: {host: erp-euw1-01, ports: ["22/sctp"]}'),)),
    Case("NG122", "NG122", "inventory/hosts-euw1.yaml", 9, 12, message="pod CIDR of cluster 'prod-use1'",
         edits=(("inventory/hosts-euw1.yaml", "vpc: legacy-euw1\n  address: 10.20.10.11",
                 "vpc: k8s-use1\n  address: 10.40.64.9"),
                ("inventory/hosts-euw1.yaml", "securityGroup: legacy-db-euw1\n---\napiVersion: netgen.dev/v1alpha1\n"
                 "kind: LegacyHost\nmetadata:\n  name: db-euw1-02",
                 "securityGroup: prod-use1-nodes\n---\napiVersion: netgen.dev/v1alpha1\n"
                 "kind: LegacyHost\nmetadata:\n  name: db-euw1-02")),
         also=frozenset({"NG107", "NG110"})),
    Case("NG123-name", "NG123", "inventory/services.yaml", 5, 9, message="control character",
         edits=(("inventory/services.yaml", "name: payments-api\n  namespace",
                 'name: "payments-api\\n"\n  namespace'),),
         also=frozenset({"NG104"})),
    Case("NG123-float", "NG123", "inventory/services.yaml", 11, 44, message="whole numbers",
         edits=(("inventory/services.yaml", "targetPort: 8443}\n  exposure:\n    type: load-balancer    ",
                 "targetPort: 8443.0}\n  exposure:\n    type: load-balancer    "),)),
    # the pgbouncer grant opens legacy-db-use1 to prod-use1's node subnets (SNAT: 8,192 addresses) and to
    # db-use1-02, which carries the group too: 8,193 beyond its own
    Case("NG124-shared-group", "NG124", "access/payments.yaml", 12, 1, also=frozenset({"NG124"}),
         message="tcp/6432 to db-use1-02 (10.10.10.12) as well, which also carries the group (1 address(es)); "
                 "narrower: give the grant's hosts a security group of their own",
         edits=(("inventory/settings.yaml", "  defaultRouteQuota: 50",
                 "  maxCollateralAddresses: 8192\n  defaultRouteQuota: 50"),)),
    Case("NG124-snat", "NG124", "access/ledger.yaml", 22, 1, also=frozenset({"NG124"}),
         message="exclude 10.20.50.51/32 from SNAT on cluster 'prod-use1' (Cluster.spec.sourceNat.excludedCidrs)",
         edits=(("inventory/settings.yaml", "  defaultRouteQuota: 50",
                 "  maxCollateralAddresses: 4096\n  defaultRouteQuota: 50"),)),
    # transit gateways (tests/test_transit_gateways.py has the estate that routes through them): each fixture's
    # gateway takes the place of the example's tgw-use1
    Case("NG125", "NG125", "inventory/transit-gateways.yaml", 11, 82,
         message="is not a route table of transit gateway 'tgw-use1'",
         files={"inventory/transit-gateways.yaml": TGW.format(region="us-east-1", vpc="legacy-use1",
                                                              table="tgw-rtb-0e100000000000012")}),
    Case("NG126", "NG126", "inventory/transit-gateways.yaml", 11, 13, message="VPC 'legacy-euw1' is in eu-west-1",
         files={"inventory/transit-gateways.yaml": TGW.format(region="us-east-1", vpc="legacy-euw1",
                                                              table="tgw-rtb-0e100000000000011")}),
    Case("NG127", "NG127", "inventory/path.yaml", 7, 8, message="no transit gateway joins VPCs 'legacy-euw1'",
         files={"inventory/path.yaml": HEAD + "kind: VpcPath\nmetadata:\n  name: erp-path\nspec:\n"
                                             "  vpcs: [legacy-euw1, k8s-usw2]\n  via: transit-gateway\n",
                "inventory/transit-gateways.yaml": TGW.format(region="us-east-1", vpc="legacy-use1",
                                                              table="tgw-rtb-0e100000000000011")}),
]


def build_fixture(case: Case, tmp_path: Path) -> Path:
    if case.base == "example":
        root = copy_example_specs(tmp_path)
    else:
        root = tmp_path / "specs"
        root.mkdir()
    for rel, old, new in case.edits:
        edit_spec(root / rel, old, new)
    for rel, content in case.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, "utf-8")
    for rel, target in case.symlinks.items():
        (root / rel).symlink_to(target)
    return root


def _relative(file: str, root: Path) -> str:
    return Path(os.path.relpath(file, root)).as_posix()  # (a file beside root is ../name)


def test_example_estate_is_clean():
    """The baseline every case mutates: no diagnostic at all, so each one below comes from its mutation."""
    assert diagnose_specs(EXAMPLE_SPECS) == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_diagnostic_is_located(case: Case, tmp_path: Path):
    root = build_fixture(case, tmp_path)
    diagnostics = diagnose_specs(root, case.as_of)
    found = [(d.code, _relative(d.location.file, root), d.location.line, d.location.column)
             for d in diagnostics]
    expected = (case.code, case.file, case.line, case.column)
    assert expected in found, "\n".join(d.text() for d in diagnostics)
    assert {d.code for d in diagnostics} <= {case.code, *case.also}, "\n".join(d.text() for d in diagnostics)
    if case.message:
        messages = [d.message for d in diagnostics
                    if (d.code, _relative(d.location.file, root), d.location.line, d.location.column) == expected]
        assert any(case.message.replace("{specs}", str(root)) in m for m in messages), messages


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_reports_case_as_json(case: Case, tmp_path: Path):
    """The same fixture through `netgen validate --format json`: same location, exit 1 unless only warnings."""
    root = build_fixture(case, tmp_path)
    result = run_cli("validate", "--specs", str(root), "--as-of", case.as_of.isoformat(), "--format", "json")
    assert result.exception is None, result.exception
    assert "Traceback" not in result.stdout + result.stderr
    reported = json.loads(result.stdout)
    located = {(d["code"], _relative(d["file"], root), d["line"], d["column"]) for d in reported}
    assert (case.code, case.file, case.line, case.column) in located
    errors = [d for d in reported if d["severity"] == "error"]
    assert result.exit_code == (1 if errors else 0)
    assert bool(errors) == (CODES[case.code][0] is Severity.ERROR)


def test_every_code_has_a_case():
    """Adding a diagnostic code without a failing fixture here fails this test."""
    covered = {case.code for case in CASES}
    assert {"NG201", "NG202", "NG203"} <= BUILD_STAGE_CODES
    missing = set(CODES) - BUILD_STAGE_CODES - covered
    assert not missing, f"codes without a failing fixture: {sorted(missing)}"
    assert covered <= set(CODES), f"cases for undocumented codes: {sorted(covered - set(CODES))}"
    assert not covered & BUILD_STAGE_CODES


def test_case_ids_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("quota", [7, 8])
def test_ng207_stack_quota_fails_the_build_at_the_account(tmp_path: Path, quota: int):
    """NG207 is a build-stage code (so not among CASES): acme-legacy gets 8 netgen stacks in us-east-1 (network
    and 7 groups) and 5 in eu-west-1. With stackQuota 7 us-east-1 is over it, located at the Account document,
    and nothing is written; with 8 every region fits and the build succeeds."""
    root = copy_example_specs(tmp_path)
    edit_spec(root / "inventory/accounts.yaml", "  profile: acme-legacy\n",
              f"  profile: acme-legacy\n  stackQuota: {quota}\n")
    assert diagnose_specs(root) == []  # a valid spec: only the build counts stacks
    out = tmp_path / "out"
    args = ("build", "--specs", str(root), "--out", str(out), "--as-of", EXAMPLE_AS_OF.isoformat())
    result = run_cli(*args, "--format", "json")
    assert result.exception is None, result.exception
    if quota == 8:
        assert result.exit_code == 0, result.stdout + result.stderr
        assert len(list((out / "aws/acme-legacy/us-east-1").glob("*.json"))) == 8
        return
    assert result.exit_code == 1
    reported = json.loads(result.stdout)
    assert [(d["code"], _relative(d["file"], root), d["line"], d["column"], d["severity"]) for d in reported] == [
        ("NG207", "inventory/accounts.yaml", 2, 1, "error")]
    assert reported[0]["message"] == (
        "account 'acme-legacy' (123456789012) would hold 8 netgen stacks in us-east-1, over its stack quota of 7: "
        "raise CloudFormation's stack quota there through Service Quotas (AWS's default: 2000 per account and "
        "region), then set spec.stackQuota on the Account")
    assert not out.exists()
    text = run_cli(*args)
    assert text.exit_code == 1
    assert f"{root / 'inventory/accounts.yaml'}:2:1: error[NG207]: account 'acme-legacy'" in text.stderr


def test_stack_quota_defaults_to_cloudformations(tmp_path: Path):
    """Without stackQuota an account may hold AWS's default of 2,000 stacks per region; with it, what it says."""
    from netgen.diagnostics import Reporter
    from netgen.pipeline import resolve_specs

    root = copy_example_specs(tmp_path)
    edit_spec(root / "inventory/accounts.yaml", "  profile: acme-platform\n",
              "  profile: acme-platform\n  stackQuota: 4000\n")
    estate = resolve_specs(root, EXAMPLE_AS_OF, Reporter()).estate
    assert {a.name: a.stack_quota for a in estate.accounts} == {"acme-legacy": 2000, "acme-platform": 4000}


def test_a_service_port_named_by_number_is_that_port(tmp_path: Path):
    """ports: [443] (or its target port 8443, or a node port) is the port named https: same flows, no diagnostic."""
    from netgen.diagnostics import Reporter
    from netgen.pipeline import resolve_specs
    from netgen.targets.report import flow_report

    def report(specs: Path) -> str:
        reporter = Reporter()
        text = flow_report(resolve_specs(specs, EXAMPLE_AS_OF, reporter).flows)
        assert reporter.sorted() == []
        return text.replace(str(specs), "SPECS")

    expected = report(EXAMPLE_SPECS)
    for file, old, new in (("billing.yaml", "payments-api, ports: [https]", "payments-api, ports: [443]"),
                           ("billing.yaml", "payments-api, ports: [https]", "payments-api, ports: [8443]"),
                           ("search.yaml", "search-api, ports: [http]", "search-api, ports: [30920]")):
        specs = copy_example_specs(tmp_path / new.split("[")[1].rstrip("]"))
        edit_spec(specs / "access" / file, old, new)
        assert report(specs) == expected, new
