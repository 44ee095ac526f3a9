"""Measuring CPU time and peak resident memory for the benchmark tools (Linux)."""
import gc
import json
import os
import statistics
import time
from typing import Callable, List


def _status_kb(field: str) -> int:
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} missing from /proc/self/status')


class PeakMemory:
    """Peak resident memory above the level at entry, in MB.

    CPU tensors are invisible to tracemalloc, so this reads the kernel's
    high-water mark (VmHWM), reset at entry through ``/proc/self/clear_refs``.
    Measure one configuration per process: the allocator keeps freed pages.
    """

    def __enter__(self):
        gc.collect()
        with open('/proc/self/clear_refs', 'w') as clear_refs:
            clear_refs.write('5')  # resets VmHWM to the current RSS
        self._baseline_kb = _status_kb('VmRSS')
        self.peak_mb = 0.0
        return self

    def __exit__(self, *exc):
        self.peak_mb = (_status_kb('VmHWM') - self._baseline_kb) / 1024
        return False


def timed_runs(fn: Callable[[], object], min_repeats: int = 3, budget_s: float = 3.0,
               max_repeats: int = 50) -> List[float]:
    """Seconds per call of ``fn`` after one warm-up call.

    Runs at least ``min_repeats`` times and otherwise as many as fit in
    ``budget_s`` (estimated from the warm-up), at most ``max_repeats``.
    """
    start = time.perf_counter()
    fn()
    warmup = time.perf_counter() - start
    repeats = max(min_repeats, min(max_repeats, int(budget_s / max(warmup, 1e-4))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_ms(times: List[float]) -> float:
    return 1e3 * statistics.median(times)


def write_records(path: str, records: List[dict]) -> None:
    """Write benchmark records as JSON, creating the folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as out:
        json.dump(records, out, indent=1)


class PhaseTimer:
    """Wall time spent in named methods of given objects, per call of a step.

    ``timer.time(obj, 'method', 'phase')`` replaces the method on that one
    instance (never on its class) by a timed call; ``label`` may instead be
    a function of the method's call index within the step, for a method
    that serves several phases in turn. :meth:`measure` runs a step and
    returns the seconds per phase, with ``'other'`` for the step's time
    outside every timed method. Timed methods must not call one another.
    """

    def __init__(self):
        self._phases = {}
        self._calls = {}
        self._restore = []

    def time(self, obj, method: str, label) -> None:
        original = getattr(obj, method)
        label_of = label if callable(label) else (lambda index: label)

        def timed(*args, **kwargs):
            index = self._calls[method] = self._calls.get(method, -1) + 1
            phase = label_of(index)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._phases[phase] = (self._phases.get(phase, 0.0)
                                       + time.perf_counter() - start)

        self._restore.append((obj, method, method in vars(obj), original))
        setattr(obj, method, timed)

    def measure(self, step: Callable[[], object]) -> dict:
        """Run ``step`` once; seconds per phase, ``'other'`` and ``'total'``."""
        self._phases, self._calls = {}, {}
        start = time.perf_counter()
        step()
        total = time.perf_counter() - start
        phases = dict(self._phases)
        phases['other'] = total - sum(phases.values())
        phases['total'] = total
        return phases

    def remove(self) -> None:
        """Put every timed method back."""
        for obj, method, own, original in reversed(self._restore):
            if own:
                setattr(obj, method, original)
            else:
                delattr(obj, method)
        self._restore = []


def median_phases(runs: List[dict]) -> dict:
    """Median milliseconds of every phase over runs of :meth:`PhaseTimer.measure`."""
    names = dict.fromkeys(name for run in runs for name in run)
    return {name: 1e3 * statistics.median(run.get(name, 0.0) for run in runs)
            for name in names}
