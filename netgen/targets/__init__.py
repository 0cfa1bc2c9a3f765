"""Output targets. Each compiles the flow list into files; compile_outputs gathers them for generated/."""

from __future__ import annotations

from netgen.diagnostics import Reporter
from netgen.pipeline import Resolved

# The work of NetworkPolicies and the flow report against that of all security-group rules, for dealing the
# rules between this process and the child that also compiles those (see compile_aws). Run alone they take 0.3
# to 0.4 of it, but more in the child, which copies the pages it writes: at 100k grants the compile stage took
# least from 0.6 to 0.7 (medians of 3 runs: 3.5 s, against 4.8 s at 0.35).
OTHER_TARGETS_SHARE = 0.65


def compile_outputs(resolved: Resolved, reporter: Reporter) -> dict[str, bytes]:
    """{relative path: bytes} of everything netgen writes; raises SpecError on any build error."""
    from netgen.targets.aws import compile_aws
    from netgen.targets.enforcers import check_enforcers
    from netgen.targets.kubernetes import compile_kubernetes
    from netgen.targets.report import flow_report

    flows = list(resolved.flows)
    check_enforcers(resolved.estate, flows, reporter)  # NG210-NG212 (raised with compile_aws's errors)

    def kubernetes_and_report() -> dict[str, bytes]:
        files = compile_kubernetes(resolved.estate, flows)
        files["flows.txt"] = flow_report(flows).encode()
        return files

    files, others = compile_aws(resolved.estate, flows, reporter, kubernetes_and_report, OTHER_TARGETS_SHARE)
    files.update(others)
    return dict(sorted(files.items()))
