"""SIGTERM and SIGINT during training: the first asks the loop to stop after its step, the second stops at once.

SLURM and Kubernetes end a job with SIGTERM and a grace period; Ctrl-C sends SIGINT. Inside
:class:`StopSignals` the first of either is only recorded (:attr:`StopSignals.received`): the trainer finishes
the step, saves a checkpoint, writes its summary line, and the command exits with 128 + the signal's number
(143 for SIGTERM, 130 for SIGINT). A second signal exits at once with that status; checkpoints are replaced
by an atomic rename, so even then the last one is whole.

Handlers can only be set from the main thread; elsewhere (a trainer run from a worker thread) the context
does nothing and the signals keep their usual effect.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Records the first SIGTERM/SIGINT while active; a second one ends the process with 128 + signum."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def name(self) -> str | None:
        """'SIGTERM' or 'SIGINT' once one came, else None."""
        return None if self.received is None else signal.Signals(self.received).name

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:  # the second signal: no more waiting
            print(f"\n{signal.Signals(signum).name} again: stopping now, without saving", file=sys.stderr,
                  flush=True)
            os._exit(128 + signum)
        self.received = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def exit_status(signum: int | None) -> int:
    """The shell's status for a process stopped by ``signum`` (143 for SIGTERM, 130 for SIGINT); 0 for None."""
    return 0 if signum is None else 128 + signum


def stopped_note(signum: int | None) -> str:
    """'; stopped by SIGTERM: run the same command to resume' for a summary line, '' without a signal."""
    if signum is None:
        return ""
    return f"; stopped by {signal.Signals(signum).name}: run the same command to resume"
