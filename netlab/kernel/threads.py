"""Run code on worker threads that may change network namespace.

The main thread never leaves the host's namespace; code that must act inside a lab namespace is
handed to a worker thread here, which enters the namespace and always leaves it again.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from netlab.kernel import netns

T = TypeVar("T")


_HELD = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}

# Set while an interrupted caller waits for its worker: long jobs check it and stop early.
cancelled = threading.Event()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[list[int]]:
    """Note SIGINT, SIGTERM and SIGHUP instead of acting on them while the block runs; the list
    yielded holds what arrived.

    Blocking them in the kernel is not enough around ``Thread.start()``: a signal that came
    just before is already pending in the interpreter, whose handler then raises inside
    ``start()``, after the thread began but before it counts as started, and the caller would
    neither know to wait for it nor be able to. Only the main thread handles signals; elsewhere
    this does nothing.
    """
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    old: dict[signal.Signals, Any] = {}
    try:
        for sig in _HELD:
            old[sig] = signal.signal(sig, lambda signum, _frame: pending.append(signum))
        yield pending
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def wait_out(finished: threading.Event) -> None:
    """Wait until ``finished`` is set, whatever interrupts arrive meanwhile, then raise the
    first of them. For a worker the caller must never leave running behind its back (an
    Event its worker sets last: after an interrupted ``Thread.join()``, Python 3.11 reports
    the thread dead while it still runs)."""
    caught: BaseException | None = None
    while not finished.is_set():
        try:
            finished.wait()
        except BaseException as exc:
            caught = caught or exc
    if caught is not None:
        raise caught


def call(fn: Callable[..., T], *args: Any, netns_name: str | None = None) -> T:
    """Call ``fn(*args)`` on a fresh worker thread (inside ``netns_name`` if given); return or
    raise what it does.

    If the caller is interrupted (Ctrl-C) while waiting, the worker is asked to stop
    (:data:`cancelled`) and waited for before the interrupt goes on: teardown must never race
    a worker that is still creating namespaces.
    """
    future: Future[T] = Future()
    # Set by the worker as its last act. Not Thread.join()/is_alive(): after a join that an
    # interrupt cut short, Python 3.11 reports the thread dead while it still runs.
    finished = threading.Event()

    def body() -> None:
        try:
            if netns_name is not None:
                netns.enter(netns_name)
            future.set_result(fn(*args))
        except BaseException as exc:  # re-raised in the caller
            future.set_exception(exc)
        finally:
            with contextlib.suppress(OSError):
                netns.enter_host()
            finished.set()

    thread = threading.Thread(
        target=body, name=f"netlab-{getattr(fn, '__name__', 'job')}", daemon=True
    )
    with _signals_deferred() as pending:
        thread.start()
    try:
        if pending:  # arrived while the thread started: delivered now, to be waited out below
            signal.raise_signal(pending[0])
        finished.wait()
    except BaseException:
        cancelled.set()
        while not finished.is_set():
            with contextlib.suppress(BaseException):
                finished.wait()
        raise
    return future.result()


def call_many(
    jobs: list[tuple[str, Callable[[], T]]], parallel: int = 32
) -> list[T | BaseException]:
    """Run each ``(netns, fn)`` job on a worker thread inside its namespace, ``parallel`` at a
    time; results (or the exception each raised) come back in job order."""
    results: list[T | BaseException] = [RuntimeError("not run")] * len(jobs)
    lock = threading.Lock()
    next_index = 0

    def worker() -> None:
        nonlocal next_index
        while True:
            with lock:
                i = next_index
                next_index += 1
            if i >= len(jobs):
                break
            name, fn = jobs[i]
            try:
                netns.enter(name)
                results[i] = fn()
            except BaseException as exc:
                results[i] = exc
        netns.enter_host()

    threads = [
        threading.Thread(target=worker, daemon=True, name="netlab-probe")
        for _ in range(min(parallel, len(jobs)))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
