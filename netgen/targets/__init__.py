"""Output targets. Each compiles the flow list into files; compile_outputs gathers them for generated/."""

from __future__ import annotations

from netgen.diagnostics import Reporter
from netgen.parallel import Beside, worth_forking
from netgen.pipeline import Resolved

# Flows above which NetworkPolicies and the flow report are compiled on a second core, beside the AWS target.
PARALLEL_COMPILE_FLOWS = 5_000


def compile_outputs(resolved: Resolved, reporter: Reporter) -> dict[str, bytes]:
    """{relative path: bytes} of everything netgen writes; raises SpecError on any build error."""
    from netgen.targets.aws import compile_aws
    from netgen.targets.kubernetes import compile_kubernetes
    from netgen.targets.report import flow_report

    flows = list(resolved.flows)

    def kubernetes_and_report() -> dict[str, bytes]:
        files = compile_kubernetes(resolved.estate, flows)
        files["flows.txt"] = flow_report(flows).encode()
        return files

    with Beside(kubernetes_and_report, fork=worth_forking(len(flows), PARALLEL_COMPILE_FLOWS)) as others:
        files = compile_aws(resolved.estate, flows, reporter)
        reporter.raise_if_errors()
        files.update(others.result())
    return dict(sorted(files.items()))
