from .profiling import PeakMemory, timed_runs

__all__ = ['PeakMemory', 'timed_runs']
