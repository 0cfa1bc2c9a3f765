"""What deploy tells its user, and what it keeps for the summary: safe to call from the threads that deploy
stacks side by side.

- text: one line per message, each naming its stack (`[stack] message`), so interleaved lines stay readable;
  on a terminal, a progress line (done / running / failed / to do) is kept at the bottom of stderr.
- json: one JSON object per line (`{"event": "log" | "stack" | "repair" | "adopted" | "problem" | "summary",
  ...}`), for tools. The last line is the summary.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

# The outcomes a stack can end a run with, in the order the summary lists them.
OUTCOMES = ("created", "updated", "unchanged", "no changes", "planned", "would recreate", "deleted",
            "would delete", "failed", "skipped")


@dataclass
class DeployReport:
    outcomes: dict[str, str] = field(default_factory=dict)  # stack -> one of OUTCOMES
    failures: dict[str, str] = field(default_factory=dict)  # stack (or "preflight") -> reason
    repairs: list[str] = field(default_factory=list)  # what settle did through the EC2 API
    adopted: list[str] = field(default_factory=list)  # live rules and routes left in place for the template's

    @property
    def ok(self) -> bool:
        return not self.failures

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: OUTCOMES.index(kv[0]) if kv[0] in OUTCOMES else 99))


class Console:
    def __init__(self, fmt: str = "text", write: Callable[[str], None] | None = None,
                 progress_stream: TextIO | None = None):
        self.fmt = fmt
        self._write = write or (lambda line: print(line, flush=True))
        self._progress = progress_stream  # a terminal, or None for no progress line
        self._lock = threading.Lock()
        self._progress_shown = False
        self.report = DeployReport()

    @classmethod
    def for_terminal(cls, fmt: str, write: Callable[[str], None]) -> Console:
        return cls(fmt, write, sys.stderr if fmt == "text" and sys.stderr.isatty() else None)

    # -- output --------------------------------------------------------------------------------------------------

    def _emit(self, text: str, event: dict) -> None:
        with self._lock:
            if self._progress_shown:
                self._progress.write("\r\x1b[K")
                self._progress_shown = False
            self._write(json.dumps(event, sort_keys=True) if self.fmt == "json" else text)

    def say(self, message: str, stack: str | None = None) -> None:
        self._emit(f"[{stack}] {message}" if stack else message, {"event": "log", "stack": stack, "message": message})

    def progress(self, done: int, running: int, failed: int, todo: int) -> None:
        if self._progress is None:
            return
        with self._lock:
            self._progress.write(f"\r\x1b[Kdone {done} / running {running} / failed {failed} / to do {todo}")
            self._progress.flush()
            self._progress_shown = True

    # -- what the summary is made of -----------------------------------------------------------------------------

    def outcome(self, stack: str, outcome: str, reason: str = "", details: list[str] | None = None) -> None:
        with self._lock:
            self.report.outcomes[stack] = outcome
            if outcome == "failed":
                self.report.failures[stack] = reason
        text = f"[{stack}] {outcome}" + (f": {reason}" if reason else "")
        event = {"event": "stack", "stack": stack, "outcome": outcome}
        if reason:
            event["reason"] = reason
        if details:
            event["details"] = details
            text += "".join(f"\n  {line}" for line in details)
        self._emit(text, event)

    def problem(self, where: str, reason: str) -> None:
        """A failure that belongs to no one stack (preflight, cleanup)."""
        with self._lock:
            self.report.failures[where] = reason
        self._emit(f"error: {where}: {reason}", {"event": "problem", "where": where, "reason": reason})

    def repair(self, stack: str, text: str, dry_run: bool) -> None:
        with self._lock:
            self.report.repairs.append(text)
        verb = "would repair" if dry_run else "repaired"
        self._emit(f"[{stack}] {verb}: {text}", {"event": "repair", "stack": stack, "repair": text,
                                                   "dryRun": dry_run})

    def adopted(self, stack: str, text: str) -> None:
        with self._lock:
            self.report.adopted.append(text)
        self._emit(f"[{stack}] adopted: {text}", {"event": "adopted", "stack": stack, "adopted": text})

    def summary(self, dry_run: bool) -> None:
        report = self.report
        counts = report.counts()
        text = ", ".join(f"{n} {o}" for o, n in counts.items()) or "nothing done"
        if report.adopted:
            text += f"; {len(report.adopted)} adopted"
        if report.repairs:
            text += f"; {len(report.repairs)} repair(s) through the EC2 API"
        lines = [f"{'dry run' if dry_run else 'deploy'}: {text}"]
        lines += [f"failed: {where}: {reason}" for where, reason in sorted(report.failures.items())]
        self._emit("\n".join(lines), {"event": "summary", "dryRun": dry_run, "counts": counts,
                                      "adopted": len(report.adopted), "repairs": len(report.repairs),
                                      "failures": dict(sorted(report.failures.items()))})
