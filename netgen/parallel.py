"""A second core for large estates: a forked child computes one independent part while this process computes
the other. Results come back pickled through a pipe, so they are equal to what a serial run computes.

Used only on Linux (fork is unsafe on macOS and absent on Windows), with more than one core, and for work large
enough to pay for the fork; NETGEN_JOBS=1 turns it off. Anywhere else the work simply runs in this process.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def worth_forking(size: int, threshold: int) -> bool:
    """True when work of this size should run on a second core."""
    if os.environ.get("NETGEN_JOBS", "") == "1" or not sys.platform.startswith("linux") or size < threshold:
        return False
    return len(os.sched_getaffinity(0)) > 1


def deal(weights: list[int], handicap: float = 1.0) -> tuple[list[int], list[int]]:
    """Deal the indexes of weighted items between this process and a child so that both finish together: each
    item goes, in order, to whichever side has less so far. The child's items count handicap times their weight,
    for what sending its results back costs. Returns (this process's indexes, the child's), each ascending."""
    mine: list[int] = []
    theirs: list[int] = []
    load_mine = load_theirs = 0.0
    for i, weight in enumerate(weights):
        if load_mine <= load_theirs:
            mine.append(i)
            load_mine += weight
        else:
            theirs.append(i)
            load_theirs += weight * handicap
    return mine, theirs


class Beside(Generic[T]):
    """work() computed beside this process: in a forked child when fork is True, else here, when result() is
    first called. Use it as a context manager so that a child whose result is never asked for is stopped:

        with Beside(lambda: part_two(), fork=worth_forking(size, THRESHOLD)) as two:
            one = part_one()
            both = combine(one, two.result())
    """

    def __init__(self, work: Callable[[], T], fork: bool):
        self.work = work
        self.pid = 0
        self.done = False
        if fork:
            self._fork()

    def _fork(self) -> None:
        for stream in (sys.stdout, sys.stderr):  # or the child would print what is buffered a second time
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):  # no stream, or a closed or broken one
                pass
        read, write = os.pipe()
        parent = os.getpid()
        try:
            self.pid = os.fork()
        except OSError:  # no memory or process slot for a child: the work runs here instead
            os.close(read)
            os.close(write)
            self.pid = 0
            return
        if self.pid == 0:  # pragma: no cover - the child never returns into netgen
            os.close(read)
            code = 0
            try:
                _die_with(parent)
                try:
                    outcome: tuple[bool, object] = (True, self.work())
                except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
                    outcome = (False, exc)
                data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(data)
            except BaseException:  # noqa: BLE001 - nothing may escape the child (the parent then redoes the work)
                code = 1
            finally:
                os._exit(code)
        os.close(write)
        self.pipe = os.fdopen(read, "rb")

    def result(self) -> T:
        """work()'s result, or the exception it raised. Should the child die without a result, the work is done
        again here, so a lost worker costs time, never correctness."""
        assert not self.done, "result() is called once"
        self.done = True
        if not self.pid:
            return self.work()
        try:
            data = self.pipe.read()
        except BaseException:  # interrupted while waiting (Ctrl-C): stop the child rather than wait for it
            self._stop()
            raise
        self.pipe.close()
        _reap(self.pid)
        try:
            ok, value = pickle.loads(data)
        except Exception:  # noqa: BLE001 - the child died (killed, out of memory) or could not pickle its outcome
            return self.work()
        if not ok:
            raise value
        return value

    def __enter__(self) -> Beside[T]:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.pid and not self.done:  # this process failed first: stop the child
            self.done = True
            self._stop()

    def _stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:  # it finished and was reaped already
            pass
        self.pipe.close()
        _reap(self.pid)


def _die_with(parent: int) -> None:
    """Have the kernel kill this child when its parent dies (netgen sent SIGTERM alone, say), rather than let it
    finish a share nobody will read. Linux's PR_SET_PDEATHSIG; should the parent be gone already, exit."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no prctl: the child finishes its share, as before
        return
    if os.getppid() != parent:
        os._exit(1)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # already reaped: netgen was started with SIGCHLD ignored
        pass
