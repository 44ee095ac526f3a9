"""How the vertices of one relation graph are split over processes.

A multi-process run may build one VRM graph over every process's vertices
while each process computes only its share of it (:mod:`.sharded`). The
distiller says so by running the loss inside :func:`vertices_sharded`;
:func:`~.vrm.vrm_terms` then computes the sharded graph from this process's
rows. Outside that block nothing changes.
"""
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator, List, NamedTuple, Optional, Sequence

import torch
import torch.distributed as dist


class VertexShards(NamedTuple):
    """The vertex counts of the processes of a group, and this process's rank.

    The vertices of the graph are the processes' rows in rank order: process
    ``r`` holds rows ``start .. start + counts[r]`` of the whole graph.
    """
    counts: Sequence[int]  #: vertices per process, in rank order
    rank: int  #: this process's rank in ``group``
    group: Optional[Any] = None  #: the torch.distributed process group (None: the default one)

    @property
    def total(self) -> int:
        """Vertices of the whole graph."""
        return sum(self.counts)

    @property
    def start(self) -> int:
        """Index of this process's first vertex in the whole graph."""
        return sum(self.counts[:self.rank])

    @property
    def world_size(self) -> int:
        return len(self.counts)

    @classmethod
    def of_process_group(cls, num_vertices: int, group=None) -> 'VertexShards':
        """The layout when this process holds ``num_vertices`` rows (one all-gather)."""
        counts = all_gather_counts(num_vertices, _device_of(group), group)
        return cls(tuple(counts), dist.get_rank(group), group)


def all_gather_counts(count: int, device, group=None) -> List[int]:
    """Every process's ``count``, in rank order (one all-gather)."""
    local = torch.tensor([count], dtype=torch.int64, device=device)
    counts = [torch.zeros_like(local) for _ in range(dist.get_world_size(group))]
    dist.all_gather(counts, local, group=group)
    return [int(c) for c in counts]


def _device_of(group) -> torch.device:
    """The device collectives of ``group`` take: CUDA under nccl, else CPU."""
    if dist.get_backend(group) == 'nccl':
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


_ACTIVE_SHARDS: ContextVar[Optional[VertexShards]] = ContextVar('vertex_shards', default=None)


@contextmanager
def vertices_sharded(shards: VertexShards) -> Iterator[VertexShards]:
    """Inside this block :func:`~.vrm.vrm_terms` takes its logits as this
    process's rows of a graph laid out as ``shards`` says, and computes this
    process's share of that graph (every process must call it alike)."""
    token = _ACTIVE_SHARDS.set(shards)
    try:
        yield shards
    finally:
        _ACTIVE_SHARDS.reset(token)


def active_vertex_shards() -> Optional[VertexShards]:
    """The layout set by an enclosing :func:`vertices_sharded`, or None."""
    return _ACTIVE_SHARDS.get()
