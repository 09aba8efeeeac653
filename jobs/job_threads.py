"""Raising an exception in another thread of this process: a job's timeout, the end of the
shutdown grace period (``jobs.threaded`` runs each job in its own thread).

CPython's ``PyThreadState_SetAsyncExc`` (as RQ's ``TimerDeathPenalty`` uses) raises the
exception when the target thread next runs Python code: a thread blocked in a socket call or a
sleep sees it only once that call returns.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from rq.exceptions import ShutDownImminentException
from rq.timeouts import BaseDeathPenalty, JobTimeoutException

#: how often the timeout watchdog looks (job timeouts are minutes long)
WATCHDOG_TICK = 0.5
#: the signals that stop a worker: handled by its main thread only
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGUSR1})


def block_stop_signals() -> None:
    """Run in a helper thread: the kernel then delivers a stop signal to the main thread.

    A signal sent to a process may be delivered to any thread that does not block it; Python
    runs its handler in the main thread, but only once that thread runs Python code again, so a
    main thread waiting on a socket (the dequeue) would not wake up to stop."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Threads started inside inherit a mask blocking the stop signals."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class GraceOver(ShutDownImminentException):
    """The shutdown grace period is over (raised in a job's thread, so it takes no arguments)."""

    def __init__(self, msg: str = "shutdown grace period over", extra_info: dict[str, Any] | None = None) -> None:
        super().__init__(msg, extra_info or {})


def raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> bool:
    """Raise ``exc_type`` in another thread of this process (as RQ's ``TimerDeathPenalty``
    does); False when that thread is gone."""
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))
    if done > 1:  # more than one thread state touched: undo, as the C API asks
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
        return False
    return done == 1


class _Watchdog:
    """One thread raising the timeouts of every job thread in this process.

    RQ's ``TimerDeathPenalty`` starts a ``threading.Timer`` (a new thread) for each job and each
    callback: measurable at a hundred jobs a second. Timeouts are minutes long, so one thread
    looking twice a second does the same work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[int, tuple[float, int, type[BaseException]]] = {}  # token → (deadline, thread, exc)
        self._tokens = itertools.count(1)
        self._pid = 0

    def add(self, seconds: float, thread_id: int, exc_type: type[BaseException]) -> int:
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (threads do not survive a fork)
                self._pid = os.getpid()
                self._due.clear()
                with stop_signals_blocked():
                    threading.Thread(target=self._watch, name="relais-job-timeouts", daemon=True).start()
            token = next(self._tokens)
            self._due[token] = (time.monotonic() + seconds, thread_id, exc_type)
            return token

    def remove(self, token: int) -> None:
        with self._lock:
            self._due.pop(token, None)

    def _watch(self) -> None:
        while True:
            time.sleep(WATCHDOG_TICK)
            now = time.monotonic()
            with self._lock:
                late = [(token, due) for token, due in self._due.items() if due[0] <= now]
                for token, _ in late:
                    del self._due[token]
            for _, (_, thread_id, exc_type) in late:
                raise_in_thread(thread_id, exc_type)


_watchdog = _Watchdog()


@functools.lru_cache(maxsize=64)
def _timeout_exception(exc_type: type[BaseException], seconds: float) -> type[BaseException]:
    """``exc_type`` carrying its message without arguments (an exception raised in another
    thread is built from its class alone)."""

    def __init__(self: BaseException, *args: object) -> None:
        exc_type.__init__(self, *(args or (f"Task exceeded maximum timeout value ({seconds:g} seconds)",)))

    return type(exc_type.__name__, (exc_type,), {"__init__": __init__})


class WatchdogDeathPenalty(BaseDeathPenalty):
    """A job's (or callback's) timeout in whichever thread runs it, kept by ``_watchdog``."""

    def __init__(self, timeout: float, exception: type[BaseException] = JobTimeoutException, **kwargs: Any) -> None:
        super().__init__(timeout, exception, **kwargs)
        self._token = 0

    def setup_death_penalty(self) -> None:
        if self._timeout and self._timeout > 0:
            exc = _timeout_exception(self._exception, self._timeout)
            self._token = _watchdog.add(self._timeout, threading.get_ident(), exc)

    def cancel_death_penalty(self) -> None:
        if self._token:
            _watchdog.remove(self._token)
            self._token = 0
