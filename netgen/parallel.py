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
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
X = TypeVar("X")

_SIZE = 8  # bytes of the length that precedes each pickled result in the pipe
PIPE_BYTES = 1 << 20  # the pipe's capacity, asked for (Linux's default is 64 KiB)


def worth_forking(size: int, threshold: int) -> bool:
    """True when work of this size should run on a second core."""
    if os.environ.get("NETGEN_JOBS", "") == "1" or not sys.platform.startswith("linux") or size < threshold:
        return False
    return len(os.sched_getaffinity(0)) > 1


def deal(weights: list[int], handicap: float = 1.0, theirs_already: float = 0.0) -> tuple[list[int], list[int]]:
    """Deal the indexes of weighted items between this process and a child so that both finish together: each
    item goes, in order, to whichever side has less so far. The child's items count handicap times their weight,
    for what sending its results back costs; theirs_already is other work the child has to do, in the same unit.
    Returns (this process's indexes, the child's), each ascending."""
    mine: list[int] = []
    theirs: list[int] = []
    load_mine, load_theirs = 0.0, theirs_already
    for i, weight in enumerate(weights):
        if load_mine <= load_theirs:
            mine.append(i)
            load_mine += weight
        else:
            theirs.append(i)
            load_theirs += weight * handicap
    return mine, theirs


class EachBeside(Generic[X, T]):
    """function(item) for each of items, computed beside this process: in a forked child when fork is True,
    which sends each result back as soon as it is computed, else here. Use it as a context manager, so that a
    child whose results are not all taken is stopped:

        with EachBeside(load, their_files, fork=True) as child:
            for file in my_files:
                keep(load(file))
                for i, result in child.ready():  # what the child has sent so far; never waits
                    keep(result)
            for i, result in child.rest():  # the others, in order, each as soon as it is there
                keep(result)

    Calling ready() between pieces of this process's own work drains the pipe, so the child seldom waits on
    it, and unpickles the child's results while the child goes on. Should the child die before it sends every
    result, rest() computes the missing ones here: a lost worker costs time, never correctness. So is a result
    the child cannot pickle; an exception function raises in the child is raised here, in its turn.
    """

    def __init__(self, function: Callable[[X], T], items: Iterable[X], fork: bool):
        self.function = function
        self.items = list(items)
        self.missing = set(range(len(self.items)))  # indexes whose results were not handed out yet
        self.pid = 0
        self.buffer = bytearray()  # bytes read from the pipe and not unpickled yet
        if fork and self.items:
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
            pid = os.fork()
        except OSError:  # no memory or process slot for a child: the work runs here instead
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # pragma: no cover - the child never returns into netgen
            os.close(read)
            self._send_all(parent, write)
        self.pid = pid
        self.pipe = read
        os.close(write)
        try:  # room for a few results in the pipe, so the child seldom waits between two calls of ready()
            import fcntl  # (POSIX only: netgen forks on Linux alone)

            fcntl.fcntl(read, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except (ImportError, AttributeError, OSError):  # no F_SETPIPE_SZ, or over /proc/sys/fs/pipe-max-size
            pass

    def _send_all(self, parent: int, write: int) -> None:  # pragma: no cover - runs in the child
        code = 0
        try:
            _die_with(parent)
            with os.fdopen(write, "wb") as pipe:
                for i, item in enumerate(self.items):
                    try:
                        outcome: tuple[int, bool, object] = (i, True, self.function(item))
                    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
                        outcome = (i, False, exc)
                    data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
                    pipe.write(len(data).to_bytes(_SIZE, "big") + data)
                    pipe.flush()
                    if not outcome[1]:
                        break
        except BaseException:  # noqa: BLE001 - nothing may escape the child (the parent then redoes the work)
            code = 1
        finally:
            os._exit(code)

    def ready(self) -> Iterator[tuple[int, T]]:
        """(index in items, result) for each result the child has sent and that was not handed out yet."""
        if self.pid:
            self._drain()
            yield from self._results()

    def rest(self) -> Iterator[tuple[int, T]]:
        """(index in items, result) for every result not handed out yet, in index order, each as soon as the
        child has sent it (what it sends meanwhile is drained as the caller goes on, so the child seldom waits
        on the pipe); once the child is done, computes here whatever it did not send."""
        while self.pid:
            progressed = False
            for result in self._results():
                progressed = True
                yield result
                self._drain()  # what the child sent while the caller used that result
            if not progressed and not self._read_more():
                self._close()
        for i in sorted(self.missing):
            value = self.function(self.items[i])
            self.missing.discard(i)
            yield i, value

    def _drain(self) -> None:
        """Read what is in the pipe now, without waiting."""
        os.set_blocking(self.pipe, False)
        while True:
            try:
                chunk = os.read(self.pipe, PIPE_BYTES)
            except BlockingIOError:  # nothing more for now
                return
            if not chunk:
                return
            self.buffer += chunk

    def _read_more(self) -> bool:
        """Wait for the child to send more; False once it has closed the pipe (finished, or died)."""
        os.set_blocking(self.pipe, True)
        try:
            chunk = os.read(self.pipe, PIPE_BYTES)
        except BaseException:  # interrupted while waiting (Ctrl-C): stop the child rather than wait for it
            self._stop()
            raise
        self.buffer += chunk
        return bool(chunk)

    def _results(self) -> Iterator[tuple[int, T]]:
        """The results whose bytes are all in the buffer, unpickled; each is taken out of the buffer before it
        is handed out, so a caller that stops early never gets one twice."""
        while len(self.buffer) >= _SIZE:
            size = int.from_bytes(self.buffer[:_SIZE], "big")
            if len(self.buffer) - _SIZE < size:
                return
            data = bytes(self.buffer[_SIZE:_SIZE + size])
            del self.buffer[:_SIZE + size]
            try:
                i, ok, value = pickle.loads(data)
            except Exception:  # noqa: BLE001 - cannot happen for what the child pickled; rest() redoes it
                continue
            if not ok:
                raise value
            self.missing.discard(i)
            yield i, value

    def __enter__(self) -> EachBeside[X, T]:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.pid:  # this process failed first, or left results untaken: stop the child
            self._stop()

    def _stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:  # it finished and was reaped already
            pass
        self._close()

    def _close(self) -> None:
        os.close(self.pipe)
        _reap(self.pid)
        self.pid = 0


class Beside(Generic[T]):
    """work() computed beside this process: in a forked child when fork is True, else here, when result() is
    first called (EachBeside of one item). Use it as a context manager so that a child whose result is never
    asked for is stopped:

        with Beside(lambda: part_two(), fork=worth_forking(size, THRESHOLD)) as two:
            one = part_one()
            both = combine(one, two.result())
    """

    def __init__(self, work: Callable[[], T], fork: bool):
        self.each: EachBeside[None, T] = EachBeside(lambda _: work(), [None], fork)
        self.pid = self.each.pid
        self.done = False

    def result(self) -> T:
        """work()'s result, or the exception it raised. Should the child die without a result, the work is done
        again here, so a lost worker costs time, never correctness."""
        assert not self.done, "result() is called once"
        self.done = True
        ((_, value),) = self.each.rest()
        return value

    def __enter__(self) -> Beside[T]:
        return self

    def __exit__(self, *exc_info) -> None:
        self.each.__exit__(*exc_info)


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
