"""docs/deploy.md's "Trying it locally against moto" runs as written: a moto server in the background, the
example estate seeded into it, built, deployed into two accounts and three regions, verified."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "deploy.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_local_moto_walkthrough_runs_as_written(tmp_path: Path) -> None:
    section = DOC.read_text().split("## Trying it locally against moto", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    lines = [line for line in block.splitlines() if not line.startswith("make ")]  # make test installed them
    script = "\n".join(lines)
    script = script.replace("5000", str(free_port())).replace("/tmp/netgen-moto", str(tmp_path / "moto"))
    script = script.replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    result = subprocess.run(["bash", "-c", f"set -euo pipefail\ntrap 'kill %1 2>/dev/null' EXIT\n{script}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "verify: ok" in result.stdout, result.stdout[-2000:]
    assert re.search(r"^deploy: \d+ created", result.stdout, re.MULTILINE), result.stdout[-2000:]
