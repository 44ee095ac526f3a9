from .hooks import DistillStatsHook, ProgressBarHook

__all__ = ['DistillStatsHook', 'ProgressBarHook']
