"""Output targets. Each compiles the flow list into files; compile_outputs gathers them for generated/."""

from __future__ import annotations

from netgen.diagnostics import Reporter
from netgen.pipeline import Resolved


def compile_outputs(resolved: Resolved, reporter: Reporter) -> dict[str, bytes]:
    """{relative path: bytes} of everything netgen writes; raises SpecError on any build error."""
    from netgen.targets.aws import compile_aws
    from netgen.targets.kubernetes import compile_kubernetes
    from netgen.targets.report import flow_report

    flows = list(resolved.flows)
    files = compile_aws(resolved.estate, flows, reporter)
    reporter.raise_if_errors()
    files.update(compile_kubernetes(resolved.estate, flows))
    files["flows.txt"] = flow_report(flows).encode()
    return dict(sorted(files.items()))
