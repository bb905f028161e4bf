"""Worker threads and Ctrl-C: an interrupt never leaves a worker running behind the caller's
back (teardown would race a worker still creating namespaces)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from netlab.kernel import threads


def test_an_interrupt_that_lands_inside_start_still_waits_for_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_start = threading.Thread.start

    def start_then_interrupted(self: threading.Thread) -> None:
        real_start(self)
        # A Ctrl-C that reached the interpreter just before start() is handled at its next
        # bytecode, inside start(), where the thread runs already: run the handler there.
        handler = signal.getsignal(signal.SIGINT)
        assert callable(handler)
        handler(signal.SIGINT, None)

    monkeypatch.setattr(threading.Thread, "start", start_then_interrupted)
    done = threading.Event()

    def work() -> None:
        time.sleep(0.2)
        done.set()

    with pytest.raises(KeyboardInterrupt):
        threads.call(work)
    assert done.is_set(), "call() let the interrupt go on while its worker still ran"
    assert threads.cancelled.is_set()
    threads.cancelled.clear()


def test_signal_handlers_are_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    assert threads.call(lambda: 42) == 42
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_worker_error_is_raised_in_the_caller() -> None:
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        threads.call(fail)


def test_an_interrupt_while_waiting_still_waits_for_the_worker() -> None:
    # Python 3.11's Thread.is_alive() says False after an interrupted join() although the
    # thread still runs: call() must not trust it.
    done = threading.Event()

    def work() -> None:
        time.sleep(0.5)
        done.set()

    timer = threading.Timer(0.1, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            threads.call(work)
    finally:
        timer.cancel()
    assert done.is_set(), "call() let the interrupt go on while its worker still ran"
    threads.cancelled.clear()


def test_wait_out_waits_through_an_interrupt_then_raises_it() -> None:
    finished = threading.Event()
    threading.Timer(0.4, finished.set).start()
    timer = threading.Timer(0.1, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        threads.wait_out(finished)
    assert finished.is_set()
