"""One relation graph over several processes, each computing its share
(``gather_vertices='sharded'``), against one process holding every vertex.

CPU, gloo, spawned processes. The functional test runs three processes of
unequal sizes in float64; the distiller test runs the toy VRM config through
DDP on two processes against one process on the union batch.
"""
import os
import os.path as osp
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import TOY_VRM
from mmdet.registry import DATASETS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from vrm_det.apis import set_data_root
from vrm_det.engine import DistillerDataParallel
from vrm_det.functional import (
    VertexShards,
    direct_edge_mask,
    inter_class_vertices,
    relation_floor,
    sharded_kth_smallest,
    vertices_sharded,
    vrm_terms,
)
from vrm_det.models.distillers.gather import resolve_gather_mode
from vrm_det.models.losses import KDLoss, VRMLoss
from vrm_det.registry import MMDET_MODELS
from vrm_det.utils.benchmark_logits import clustered_logits, iid_logits

COUNTS = (5, 7, 9)  # vertices per process; one process holds all 21
NUM_CLASSES = 6
ALPHA, BETA = 1.0, 0.3  # unequal, so that a swapped term shows
#: (name, logits, VRM options): floor off and on, both pruning readings, both
#: inter-class graphs. The clustered logits (close views) put edges of both
#: graphs on the directly computed path at floor 0.
CASES = [
    ('floor0-clustered', 'clustered', dict(edge_floor=0.0, keep_percentile=80)),
    ('floor0.5-drop', 'clustered', dict(edge_floor=0.5, short_edges='drop', keep_percentile=80)),
    ('floor0.5-iid-cross-concat', 'iid', dict(edge_floor=0.5, keep_percentile=70,
                                              joint_entropy_mode='cross', ic_edges='concat')),
    ('floor0-reference-impl', 'iid', dict(edge_floor=0.0, keep_percentile=90, impl='reference')),
    # Views 1e-7 apart: even float64 expansion loses most digits on the
    # inter-class diagonal, which only the direct path gets right.
    ('floor0-near-identical-views', 'near', dict(edge_floor=0.0, keep_percentile=80)),
]
STATISTICS = ('inter_sample', 'inter_class', 'kept_fraction', 'joint_entropy',
              'entropy_threshold', 'unit_edge_share_sample', 'unit_edge_share_class',
              'short_dropped_sample', 'short_dropped_class')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def all_logits(kind):
    """The four (21, C) float64 matrices of every vertex, the same in every process."""
    total = sum(COUNTS)
    if kind == 'near':
        generator = torch.Generator().manual_seed(3)
        real = [3 * torch.randn(total, NUM_CLASSES, generator=generator, dtype=torch.float64)
                for _ in range(2)]
        return [m for r in real for m in
                (r, r + 1e-7 * torch.randn(r.shape, generator=generator, dtype=torch.float64))]
    if kind == 'clustered':
        drawn = clustered_logits(total, NUM_CLASSES, share=0.5, spread=0.05, gap=0.02, seed=1)
    else:
        drawn = iid_logits(total, NUM_CLASSES, seed=2)
    return [drawn[key].double() for key in ('student_logits', 'student_virtual_logits',
                                            'teacher_logits', 'teacher_virtual_logits')]


def terms_and_grads(rows, options):
    """The VRM terms of ``rows`` (four matrices) and the gradient of
    ``ALPHA * L_is + BETA * L_ic`` on the two student matrices."""
    student, student_virtual = (m.clone().requires_grad_(True) for m in rows[:2])
    terms = vrm_terms(student, student_virtual, *rows[2:], **options)
    (ALPHA * terms.inter_sample + BETA * terms.inter_class).backward()
    result = {name: getattr(terms, name).detach() for name in STATISTICS}
    result.update(pruned=terms.pruned, grad_real=student.grad, grad_virtual=student_virtual.grad)
    return result


def selection_inputs(rank):
    """Per process values for the distributed selection: ties (rounded values),
    a process with no values, and whole blocks of one value."""
    generator = torch.Generator().manual_seed(rank)
    sizes = (3000, 0, 5000)
    rounded = (torch.randn(sizes[rank], generator=generator) * 3).round(decimals=1)
    constant = torch.full((sizes[rank],), 2.5)
    two_values = (torch.arange(sizes[rank]) % 2).double()  # half 0, half 1
    return dict(rounded=rounded.double(), constant=constant.double(), two_values=two_values)


def _functional_worker(rank, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=len(COUNTS))
    try:
        shards = VertexShards(COUNTS, rank)
        own = slice(shards.start, shards.start + COUNTS[rank])
        results = {}
        for name, kind, options in CASES:
            with vertices_sharded(shards):
                results[name] = terms_and_grads([m[own] for m in all_logits(kind)], options)
        selections = {}
        for kind, values in selection_inputs(rank).items():
            total = sum(len(selection_inputs(r)[kind]) for r in range(len(COUNTS)))
            for k in (1, 2, total // 2, total // 2 + 1, round(0.95 * total), total):
                selections[kind, k] = sharded_kth_smallest(values, k, gathered_size=100)
        results['selections'] = selections
        torch.save(results, osp.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.barrier()  # no process tears the group down under another
        dist.destroy_process_group()


def test_sharded_graph_equals_one_process_holding_every_vertex(tmp_path):
    """Three processes of 5, 7 and 9 vertices against one of 21: every term
    and statistic, the pruned rows, and every process's gradient on its rows
    (DDP's averaging divides it by 3); and the distributed selection against
    torch's kthvalue on all values together."""
    mp.spawn(_functional_worker, args=(free_port(), str(tmp_path)), nprocs=len(COUNTS))
    start = 0
    for rank, count in enumerate(COUNTS):
        sharded = torch.load(tmp_path / f'rank{rank}.pt', weights_only=False)
        own = slice(start, start + count)
        start += count
        for name, kind, options in CASES:
            single = terms_and_grads(all_logits(kind), options)
            for key in STATISTICS:
                torch.testing.assert_close(sharded[name][key], single[key], rtol=1e-10,
                                           atol=1e-12, equal_nan=True, check_dtype=False,
                                           msg=f'{name}: {key}')
            assert torch.equal(sharded[name]['pruned'], single['pruned'][own]), name
            for key in ('grad_real', 'grad_virtual'):
                torch.testing.assert_close(sharded[name][key] / len(COUNTS), single[key][own],
                                           rtol=1e-9, atol=1e-12, msg=f'{name}: {key}')
        everything = {kind: torch.cat([selection_inputs(r)[kind] for r in range(len(COUNTS))])
                      for kind in selection_inputs(0)}
        for (kind, k), value in sharded['selections'].items():
            assert value == everything[kind].kthvalue(k).values, (kind, k)


def test_the_cases_reach_what_they_are_meant_to():
    """The equality test has teeth: pruning drops edges, the floor leaves short
    edges and drops some, and at floor 0 the close views put edges of both
    graphs on the directly computed path (the second all-reduce)."""
    by_name = {name: (kind, options) for name, kind, options in CASES}
    for name, (kind, options) in by_name.items():
        terms = terms_and_grads(all_logits(kind), options)
        assert 0 < terms['kept_fraction'] < 1, name
    assert terms_and_grads(all_logits('clustered'),
                           by_name['floor0.5-drop'][1])['short_dropped_sample'] > 0
    for kind in ('clustered', 'near'):
        s, v, t, w = all_logits(kind)
        for src_dst in ((s, v, t, w),
                        inter_class_vertices(s, v)[:2] + inter_class_vertices(t, w)[:2]):
            floor = relation_floor(t, w, src_dst[0].shape[1], 0.0)
            assert direct_edge_mask(*src_dst, floor, floor).any(), kind


# -- the distiller through DDP ---------------------------------------------

def build_toy_distiller(teacher_ckpt, **overrides):
    """The toy VRM distiller, made deterministic per image: the student's
    batch-norm frozen (batch statistics would differ between a 2-image and a
    4-image batch), every proposal a vertex (``PseudoSampler``: mmdet's random
    RoI sampler would draw other RoIs in each run) and a fixed photometric
    virtual view (RandAugment draws per image from a process's random stream,
    which a split batch consumes differently)."""
    init_default_scope('mmdet')
    model = Config.fromfile(str(TOY_VRM)).model
    model.student.backbone.norm_eval = True
    model.student.train_cfg.rcnn.sampler.type = 'PseudoSampler'
    model.update(teacher_ckpt=str(teacher_ckpt), distill_warmup_iters=0, **overrides)
    distiller = MMDET_MODELS.build(model).train()  # train() applies norm_eval
    distiller.make_virtual_inputs = lambda inputs, image_sizes=None: 0.8 * inputs + 0.1
    return distiller


def distillation_step(model, distiller, items):
    """One forward of ``model`` (the distiller or its DDP wrapper) on ``items``
    and the backward of the VRM losses. The detection losses enter with
    weight 0: every parameter takes part (DDP waits for each), and their
    per-process normalisation is DDP's business, not the graph's."""
    data = distiller.data_preprocessor(pseudo_collate(items), training=True)
    losses = model(**data, mode='loss')
    total = 0
    for key, value in losses.items():
        if 'loss' in key:
            value = sum(value) if isinstance(value, (list, tuple)) else value
            total = total + value * (1.0 if key.startswith('loss_vrm') else 0.0)
    total.backward()
    grads = {name: param.grad.clone() for name, param in distiller.student.named_parameters()
             if param.grad is not None}
    return dict(grads=grads, vertices=losses['distill_vertices'],
                **{key: losses[key].detach() for key in ('loss_vrm_sample', 'loss_vrm_class',
                                                         'kept_fraction')})


def toy_items(data_root, count=4):
    """``count`` training images and their boxes, without the random flip."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(TOY_VRM))
    set_data_root(cfg, str(data_root))
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.pipeline = [t for t in dataset_cfg.pipeline if t['type'] != 'RandomFlip']
    dataset = DATASETS.build(dataset_cfg)
    return [dataset[index] for index in range(count)]


def _ddp_worker(rank, port, teacher_ckpt, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        distiller = build_toy_distiller(teacher_ckpt, gather_vertices=True)
        assert distiller.gather_mode == 'sharded'
        distiller.student.load_state_dict(torch.load(osp.join(out_dir, 'student.pt')))
        items = torch.load(osp.join(out_dir, 'items.pt'), weights_only=False)
        wrapped = DistillerDataParallel(distiller, device_ids=None)
        # Unequal shares: one image on rank 0, three on rank 1.
        result = distillation_step(wrapped, distiller, items[:1] if rank == 0 else items[1:])
        torch.save(result, osp.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.barrier()  # no process tears the group down under another
        dist.destroy_process_group()


def test_sharded_toy_distiller_through_ddp_equals_one_process_on_the_union_batch(
        toy_data, toy_teacher_ckpt, tmp_path):
    """Two processes of one and three images, DDP-averaged parameter gradients
    of the VRM losses, against one process on all four images."""
    distiller = build_toy_distiller(toy_teacher_ckpt)
    torch.save(distiller.student.state_dict(), tmp_path / 'student.pt')
    items = toy_items(toy_data)
    torch.save(items, tmp_path / 'items.pt')
    mp.spawn(_ddp_worker, args=(free_port(), str(toy_teacher_ckpt), str(tmp_path)), nprocs=2)
    single = distillation_step(distiller, distiller, items)
    ranks = [torch.load(tmp_path / f'rank{rank}.pt', weights_only=False) for rank in (0, 1)]
    assert single['grads'], 'no gradient reached the student'
    for result in ranks:
        assert result['vertices'] == single['vertices']
        for key in ('loss_vrm_sample', 'loss_vrm_class', 'kept_fraction'):
            torch.testing.assert_close(result[key], single[key], rtol=1e-5, atol=1e-6,
                                       msg=key)
        assert result['grads'].keys() == single['grads'].keys()
        for name, grad in single['grads'].items():
            torch.testing.assert_close(result['grads'][name], grad, rtol=1e-4,
                                       atol=1e-5 * float(grad.abs().max()) + 1e-12, msg=name)


def test_gather_vertices_is_checked_and_true_shards_where_the_loss_can():
    vrm = VRMLoss()
    assert resolve_gather_mode(False, vrm) is None
    assert resolve_gather_mode(True, vrm) == 'sharded'
    assert resolve_gather_mode('replicated', vrm) == 'replicated'
    for loss in (KDLoss(), VRMLoss(loss='huber'), VRMLoss(relation='gram'), VRMLoss(kd_weight=1)):
        assert resolve_gather_mode(True, loss) == 'replicated'
        with pytest.raises(ValueError, match="gather_vertices='replicated'"):
            resolve_gather_mode('sharded', loss)
    for bad in ('shard', 'all', 1, None):
        with pytest.raises(ValueError, match='must be one of'):
            resolve_gather_mode(bad, vrm)
