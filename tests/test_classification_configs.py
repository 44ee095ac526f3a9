"""The classification configs: they build, train a step on data in the real
formats, differ from their VRM config in the loss only, and carry the
published recipes and baseline settings.

The data are written here in the formats mmpretrain reads: CIFAR-100's python
pickles (``cifar-100-python/{train,test,meta}``) and ImageNet's folder layout
with ``meta/{train,val}.txt``. mmpretrain's ``CIFAR100`` checks the md5 of the
released files; a generated file cannot match, so the tests clear the class's
checksum entries (``md5 None`` is the class's own "do not check" value) and
use the class otherwise unmodified.
"""
import copy
import functools
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from vrm_det.apis import build_runner, check_data_paths, isolate_run, prepare_train_config
from vrm_det.models.backbones import cifar_classifier, imagenet_classifier
from vrm_det.models.distillers.base_distiller import _teacher_model_config
from vrm_det.registry import MMPRETRAIN_AVAILABLE

pytestmark = pytest.mark.skipif(not MMPRETRAIN_AVAILABLE, reason='needs mmpretrain')

ROOT = Path(__file__).parents[1]
CONFIGS = ROOT / 'configs' / 'classification'
ALL = sorted(p for p in CONFIGS.rglob('*.py') if '_base_' not in p.parts)
CIFAR_PAIRS = ['resnet32x4-resnet8x4', 'wrn_40_2-wrn_16_2', 'resnet50-mobilenetv2',
               'vgg13-mobilenetv2', 'resnet56-deit-tiny']
IN1K_PAIRS = ['resnet34-resnet18', 'resnet50-mobilenetv1']
BASELINES = ['kd', 'dkd', 'dist']
CIFAR_TRAIN_IMAGES = 50000  # the released training split
NUM_TRAIN, NUM_TEST = 8, 4


def config_id(path):
    return str(path.relative_to(CONFIGS))


@functools.cache
def _parsed(path: str) -> Config:
    return Config.fromfile(path)


def load(path) -> Config:
    """The config at ``path`` (parsed once per session; a copy to modify)."""
    return copy.deepcopy(_parsed(str(path)))


def pair_config(method, pair, dataset):
    return load(CONFIGS / method / f'{method}_{pair}_{dataset}.py')


# -- data in the released formats ---------------------------------------------

def _cifar_split(rng, count):
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 100, count).tolist()
    # The released layout: one row per image, the R, G and B planes one after another.
    entry = {'filenames': [f'image_{i}.png' for i in range(count)],
             'batch_label': 'generated',
             'fine_labels': labels,
             'coarse_labels': [label // 5 for label in labels],
             'data': images.transpose(0, 3, 1, 2).reshape(count, -1)}
    return images, labels, entry


@pytest.fixture(scope='module')
def cifar100(tmp_path_factory):
    """``data_root`` with ``cifar-100-python/{train,test,meta}`` and the images
    (N, 32, 32, 3) and labels it holds."""
    root = tmp_path_factory.mktemp('cifar100')
    folder = root / 'cifar-100-python'
    folder.mkdir()
    rng = np.random.default_rng(0)
    train_images, train_labels, train = _cifar_split(rng, NUM_TRAIN)
    _, _, test = _cifar_split(rng, NUM_TEST)
    meta = {'fine_label_names': [f'class_{i}' for i in range(100)],
            'coarse_label_names': [f'superclass_{i}' for i in range(20)]}
    for name, content in (('train', train), ('test', test), ('meta', meta)):
        with open(folder / name, 'wb') as f:
            pickle.dump(content, f, protocol=2)
    return dict(root=str(root), images=train_images, labels=train_labels)


@pytest.fixture
def unchecked_cifar_files(monkeypatch):
    """mmpretrain's CIFAR100 with its md5 entries set to None (no check)."""
    from mmpretrain.datasets import CIFAR100
    monkeypatch.setattr(CIFAR100, 'train_list', [[n, None] for n, _ in CIFAR100.train_list])
    monkeypatch.setattr(CIFAR100, 'test_list', [[n, None] for n, _ in CIFAR100.test_list])
    monkeypatch.setattr(CIFAR100, 'meta', dict(CIFAR100.meta, md5=None))


@pytest.fixture(scope='module')
def imagenet(tmp_path_factory):
    """``data_root`` in ImageNet's layout: train/<wnid>/*.JPEG, val/*.JPEG and
    meta/{train,val}.txt (``relative path label`` per line)."""
    import mmcv
    root = tmp_path_factory.mktemp('imagenet')
    rng = np.random.default_rng(1)
    lines = {'train': [], 'val': []}
    for index in range(4):
        label = int(rng.integers(0, 1000))
        image = rng.integers(0, 256, (40 + 8 * index, 48, 3), dtype=np.uint8)
        train_name = f'n{label:08d}/n{label:08d}_{index}.JPEG'
        val_name = f'ILSVRC2012_val_{index + 1:08d}.JPEG'
        mmcv.imwrite(image, str(root / 'train' / train_name))
        mmcv.imwrite(image, str(root / 'val' / val_name))
        lines['train'].append(f'{train_name} {label}')
        lines['val'].append(f'{val_name} {label}')
    (root / 'meta').mkdir()
    for split, rows in lines.items():
        (root / 'meta' / f'{split}.txt').write_text('\n'.join(rows) + '\n')
    return str(root)


# -- building ------------------------------------------------------------------

@pytest.fixture(scope='module')
def teacher_ckpts(tmp_path_factory):
    """A checkpoint of each teacher config, written from the built teacher."""
    from mmpretrain.registry import MODELS
    cache = {}

    def get(teacher):
        key = str(teacher)
        if key not in cache:
            init_default_scope('mmpretrain')
            model = MODELS.build(_teacher_model_config(teacher))
            path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
            torch.save({'state_dict': model.state_dict()}, path)
            cache[key] = str(path)
        return cache[key]
    return get


def test_the_classification_matrix_is_complete():
    names = {config_id(p) for p in ALL}
    for dataset, pairs in (('cifar100', CIFAR_PAIRS), ('in1k', IN1K_PAIRS)):
        for pair in pairs:
            for method in ['vrm'] + BASELINES:
                assert f'{method}/{method}_{pair}_{dataset}.py' in names
            assert f'students/{pair.split("-", 1)[1]}_{dataset}.py' in names
    for teacher in ('resnet32x4', 'wrn_40_2', 'resnet50', 'vgg13', 'resnet56'):
        assert f'teachers/{teacher}_cifar100.py' in names


@pytest.mark.parametrize('path', ALL, ids=config_id)
def test_config_builds(path, teacher_ckpts):
    from mmpretrain.registry import MODELS
    cfg = load(path)
    assert cfg.custom_imports == dict(imports=['vrm_det'], allow_failed_imports=False)
    assert cfg.get('data_preprocessor') is None, 'the Runner would merge it into a distiller'
    init_default_scope('mmpretrain')
    distiller = cfg.model.type == 'ImageClassifierDistiller'
    if distiller:
        cfg.model.teacher_ckpt = teacher_ckpts(cfg.model.teacher)
    model = MODELS.build(cfg.model)
    if distiller:
        method = path.name.split('_')[0]
        expected = dict(vrm='VRMLoss', kd='KDLoss', dkd='DKDLoss', dist='DISTLoss')[method]
        assert type(model.distill_loss).__name__ == expected
        assert type(model.virtual_view).__name__ == 'PipelineView'
        assert model.student.head.num_classes == model.teacher.head.num_classes


CIFAR_NETWORKS = dict(resnet8x4='resnet8x4', resnet32x4='resnet32x4', resnet56='resnet56',
                      wrn_16_2='wrn_16_2', wrn_40_2='wrn_40_2', vgg13='vgg13',
                      mobilenetv2='MobileNetV2', resnet50='ResNet50')
IN1K_NETWORKS = dict(resnet18='ResNet18', resnet34='ResNet34', resnet50='ResNet50',
                     mobilenetv1='MobileNetV1')


@pytest.mark.parametrize('dataset, name, arch', [
    *[('cifar100', name, arch) for name, arch in CIFAR_NETWORKS.items()],
    *[('in1k', name, arch) for name, arch in IN1K_NETWORKS.items()]])
def test_model_files_are_the_benchmark_networks(dataset, name, arch):
    """Each model file is the network vrm_det's catalogue (whose parameter counts
    tests/test_cifar_backbones.py checks against the published figures) names."""
    model = load(CONFIGS / '_base_' / 'models' / dataset / f'{name}.py').model.to_dict()
    model.pop('data_preprocessor')
    catalogue = cifar_classifier if dataset == 'cifar100' else imagenet_classifier
    assert model == catalogue(arch)


def test_deit_tiny_sees_cifar_at_native_resolution():
    """32 px input in 4 px patches: 64 tokens and the class token, 192 channels."""
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model = MODELS.build(load(CONFIGS / '_base_/models/cifar100/deit-tiny.py').model)
    assert model.backbone.patch_resolution == (8, 8)
    assert model.backbone.pos_embed.shape == (1, 64 + 1, 192)
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 100)


# -- twins and recipes ----------------------------------------------------------

# What a baseline config may change beside distill_loss: the student's own
# cross-entropy weight (KD trains with 0.1 on CIFAR) and DKD's warm-up.
TWIN_EXTRAS = dict(kd=('kd_loss', 'kd_ce_weight'), dist=('dist_loss', 'dist_ce_weight'), dkd=())


@pytest.mark.parametrize('method', BASELINES)
@pytest.mark.parametrize('dataset, pair', [*[('cifar100', p) for p in CIFAR_PAIRS],
                                           *[('in1k', p) for p in IN1K_PAIRS]])
def test_baseline_configs_differ_from_vrm_only_in_the_loss(method, dataset, pair):
    vrm = pair_config('vrm', pair, dataset).to_dict()
    other = pair_config(method, pair, dataset).to_dict()
    for cfg in (vrm, other):
        cfg['model'].pop('distill_loss')
        cfg['model'].pop('distill_warmup_iters', None)
        cfg['model']['student']['head']['loss'].pop('loss_weight')
    for key in TWIN_EXTRAS[method]:
        other.pop(key)
    assert other == vrm


def _pipeline_types(pipeline):
    return [step['type'] for step in pipeline]


@pytest.mark.parametrize('dataset, pair', [*[('cifar100', p) for p in CIFAR_PAIRS],
                                           *[('in1k', p) for p in IN1K_PAIRS]])
def test_vrm_configs_take_the_virtual_view_from_the_pipeline(dataset, pair):
    """The VRM paper: one RandAugment copy of each image, n = 2 operations, alpha 128,
    beta 32; the view made after the crop and flip of the real view."""
    cfg = pair_config('vrm', pair, dataset)
    assert cfg.model.distill_loss == dict(type='VRMLoss', alpha=128.0, beta=32.0)
    assert cfg.model.virtual_view == dict(type='PipelineView')
    assert cfg.model.get('distill_warmup_iters', 0) == 0
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert _pipeline_types(pipeline)[-2:] == ['MultiView', 'PackInputs']
    multiview = pipeline[-2]
    assert multiview.num_views == [1, 1] and multiview.transforms[0] == []
    (augment,) = multiview.transforms[1]
    assert augment.type == 'RandAugment' and augment.num_policies == 2
    assert augment.policies == 'timm_increasing'
    # timm's rand-m9-mstd0.5, as mmpretrain's _base_/datasets/imagenet_bs64_swin_224.py.
    assert (augment.magnitude_level, augment.magnitude_std, augment.total_level) == (9, 0.5, 10)
    plain = load(CONFIGS / 'students' / f'{pair.split("-", 1)[1]}_{dataset}.py')
    assert plain.train_dataloader.dataset.pipeline == pipeline[:-2] + [pipeline[-1]]


@pytest.mark.parametrize('dataset, pair', [*[('cifar100', p) for p in CIFAR_PAIRS],
                                           *[('in1k', p) for p in IN1K_PAIRS]])
def test_student_alone_is_the_control_arm(dataset, pair):
    """The student-alone config trains the distiller's student with the same
    schedule, on the plain pipeline, with cross-entropy at weight 1."""
    vrm = pair_config('vrm', pair, dataset)
    alone = load(CONFIGS / 'students' / f'{pair.split("-", 1)[1]}_{dataset}.py')
    assert alone.model == vrm.model.student
    assert alone.model.head.loss.loss_weight == 1.0
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg', 'auto_scale_lr',
                'default_hooks', 'val_dataloader'):
        assert alone[key] == vrm[key], key
    assert 'MultiView' not in _pipeline_types(alone.train_dataloader.dataset.pipeline)


@pytest.mark.parametrize('pair', CIFAR_PAIRS)
def test_cifar_teachers_are_trained_as_the_distillers_load_them(pair):
    teacher = pair.split('-')[0]
    vrm = pair_config('vrm', pair, 'cifar100')
    training = load(CONFIGS / 'teachers' / f'{teacher}_cifar100.py')
    assert training.model == _teacher_model_config(vrm.model.teacher)
    assert training.optim_wrapper.optimizer.lr == 0.05
    assert 'MultiView' not in _pipeline_types(training.train_dataloader.dataset.pipeline)


@pytest.mark.parametrize('path', [p for p in ALL if p.stem.endswith('_cifar100')],
                         ids=config_id)
def test_cifar_configs_use_the_benchmark_recipe(path):
    """HobbitLong/RepDistiller train_student.py / train_teacher.py defaults and
    dataset/cifar100.py; megvii-research/mdistiller configs/cifar100/*.yaml:
    batch 64, 240 epochs, SGD lr 0.05 (0.01 for MobileNetV2 students),
    momentum 0.9, weight decay 5e-4, x0.1 after epochs 150, 180, 210; crop 32
    with padding 4 and a flip; mean (0.5071, 0.4867, 0.4408) and std
    (0.2675, 0.2565, 0.2761) on [0, 1] pixels."""
    cfg = load(path)
    student = 'mobilenetv2' in path.stem and 'teachers' not in path.parts
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.01 if student else 0.05,
                                               momentum=0.9, weight_decay=5e-4)
    assert cfg.param_scheduler == dict(type='MultiStepLR', by_epoch=True,
                                       milestones=[150, 180, 210], gamma=0.1)
    assert (cfg.train_cfg.by_epoch, cfg.train_cfg.max_epochs) == (True, 240)
    assert cfg.train_dataloader.batch_size == 64
    assert cfg.train_dataloader.dataset.type == 'CIFAR100'
    assert cfg.train_dataloader.dataset.pipeline[:2] == [
        dict(type='RandomCrop', crop_size=32, padding=4),
        dict(type='RandomFlip', prob=0.5, direction='horizontal')]
    model = cfg.model.student if cfg.model.type == 'ImageClassifierDistiller' else cfg.model
    preprocessor = model.data_preprocessor
    np.testing.assert_allclose(np.array(preprocessor.mean) / 255, [0.5071, 0.4867, 0.4408])
    np.testing.assert_allclose(np.array(preprocessor.std) / 255, [0.2675, 0.2565, 0.2761])
    assert preprocessor.to_rgb is False  # mmpretrain's CIFAR100 yields RGB arrays


@pytest.mark.parametrize('path', [p for p in ALL if p.stem.endswith('_in1k')], ids=config_id)
def test_imagenet_configs_use_the_standard_recipe(path):
    """mmpretrain's _base_/schedules/imagenet_bs256.py and
    _base_/datasets/imagenet_bs32.py: SGD lr 0.1 for batch 256 (8 x 32),
    momentum 0.9, weight decay 1e-4, 100 epochs, x0.1 after 30, 60, 90."""
    cfg = load(path)
    assert cfg.optim_wrapper.optimizer.lr == 0.1
    assert cfg.optim_wrapper.optimizer.weight_decay == 1e-4
    assert cfg.optim_wrapper.optimizer.momentum == 0.9
    assert cfg.param_scheduler.milestones == [30, 60, 90]
    assert cfg.train_cfg.max_epochs == 100
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 256


# The published settings, one row per (dataset, pair): (KD T, KD weight, CE
# weight), (DKD alpha, beta, T, CE weight, warm-up epochs), (DIST tau, beta,
# gamma, weight, CE weight).
KD_SETTINGS = dict(cifar100=(4.0, 0.9, 0.1), in1k=(1.0, 0.5, 0.5))
DKD_BETA = {('cifar100', 'resnet32x4-resnet8x4'): 8.0, ('cifar100', 'wrn_40_2-wrn_16_2'): 6.0,
            ('cifar100', 'resnet50-mobilenetv2'): 8.0, ('cifar100', 'vgg13-mobilenetv2'): 6.0,
            ('cifar100', 'resnet56-deit-tiny'): 8.0, ('in1k', 'resnet34-resnet18'): 0.5,
            ('in1k', 'resnet50-mobilenetv1'): 2.0}
DIST_SETTINGS = dict(cifar100=(4.0, 2.0), in1k=(1.0, 2.0))


@pytest.mark.parametrize('dataset, pair', list(DKD_BETA))
def test_kd_configs_carry_the_published_setting(dataset, pair):
    """megvii-research/mdistiller: CIFAR-100 mdistiller/engine/cfg.py KD
    (TEMPERATURE 4, CE_WEIGHT 0.1, KD_WEIGHT 0.9; HobbitLong/RepDistiller
    scripts/run_cifar_distill.sh `-r 0.1 -a 0.9`), ImageNet
    configs/imagenet/r34_r18/kd.yaml and r50_mv1/kd.yaml (1, 0.5, 0.5)."""
    cfg = pair_config('kd', pair, dataset)
    temperature, weight, ce_weight = KD_SETTINGS[dataset]
    assert cfg.model.distill_loss == dict(type='KDLoss', temperature=temperature,
                                          loss_weight=weight)
    assert cfg.model.student.head.loss.loss_weight == ce_weight


@pytest.mark.parametrize('dataset, pair', list(DKD_BETA))
def test_dkd_configs_carry_the_published_setting(dataset, pair):
    """megvii-research/mdistiller mdistiller/engine/cfg.py (ALPHA 1, BETA 8,
    T 4, CE 1, WARMUP 20 epochs), configs/cifar100/dkd/wrn40_2_wrn_16_2.yaml
    and vgg13_mv2.yaml (BETA 6), configs/imagenet/r34_r18/dkd.yaml (BETA 0.5,
    T 1, WARMUP 1) and r50_mv1/dkd.yaml (BETA 2, T 1, WARMUP 1). The warm-up
    factor there is min(epoch / WARMUP, 1) with epochs counted from 1: WARMUP 1
    is no warm-up, WARMUP 20 is 20 epochs of ceil(50000 / 64) iterations."""
    cfg = pair_config('dkd', pair, dataset)
    temperature, warmup_epochs = (4.0, 20) if dataset == 'cifar100' else (1.0, 0)
    assert cfg.model.distill_loss == dict(type='DKDLoss', alpha=1.0, beta=DKD_BETA[dataset, pair],
                                          temperature=temperature, loss_weight=1.0)
    assert cfg.model.student.head.loss.loss_weight == 1.0
    iterations_per_epoch = math.ceil(CIFAR_TRAIN_IMAGES / cfg.train_dataloader.batch_size)
    assert cfg.model.get('distill_warmup_iters', 0) == warmup_epochs * iterations_per_epoch


@pytest.mark.parametrize('dataset, pair', list(DKD_BETA))
def test_dist_configs_carry_the_published_setting(dataset, pair):
    """hunto/image_classification_sota (hunto/DIST_KD's classification code):
    configs/strategies/distill/dist_cifar.yaml (kd dist_t4: tau 4, beta = gamma
    = 1; ori_loss_weight 1, kd_loss_weight 2) and resnet_dist.yaml (kd dist:
    tau 1; weights 1 and 2)."""
    cfg = pair_config('dist', pair, dataset)
    temperature, weight = DIST_SETTINGS[dataset]
    assert cfg.model.distill_loss == dict(type='DISTLoss', inter_weight=1.0, intra_weight=1.0,
                                          temperature=temperature, loss_weight=weight)
    assert cfg.model.student.head.loss.loss_weight == 1.0


# -- data ----------------------------------------------------------------------

def test_cifar100_refuses_files_that_are_not_the_release(cifar100):
    """mmpretrain's CIFAR100 verifies the released md5s: with download=False a
    generated file is reported as a missing dataset (what a user with a
    corrupted download sees)."""
    from mmpretrain.datasets import CIFAR100
    with pytest.raises(RuntimeError, match='Cannot find CIFAR100 dataset'):
        CIFAR100(data_root=cifar100['root'], split='train', download=False)


def _dataset(cfg, data_root):
    from mmpretrain.registry import DATASETS
    init_default_scope('mmpretrain')
    dataset = cfg.train_dataloader.dataset
    dataset.data_root = data_root
    return DATASETS.build(dataset)


def _is_padded_crop_of(view, image, padding=4):
    """Whether ``view`` (H, W, C) is a crop of ``image`` zero-padded by
    ``padding``, flipped horizontally or not."""
    height, width = image.shape[:2]
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    for candidate in (padded, padded[:, ::-1]):
        for top in range(2 * padding + 1):
            for left in range(2 * padding + 1):
                if np.array_equal(candidate[top:top + height, left:left + width], view):
                    return True
    return False


def test_cifar_pipeline_gives_the_real_crop_and_an_augmented_copy(cifar100,
                                                                   unchecked_cifar_files):
    dataset = _dataset(pair_config('vrm', 'resnet32x4-resnet8x4', 'cifar100'), cifar100['root'])
    assert len(dataset) == NUM_TRAIN
    np.random.seed(0)
    changed = 0
    for index in range(NUM_TRAIN):
        sample = dataset[index]
        real, virtual = sample['inputs']
        assert real.shape == virtual.shape == (3, 32, 32)
        assert sample['data_samples'].gt_label.item() == cifar100['labels'][index]
        # The real view is the stored image, cropped from its padded copy and maybe flipped.
        assert _is_padded_crop_of(real.permute(1, 2, 0).numpy(), cifar100['images'][index])
        changed += not torch.equal(real, virtual)
    assert changed >= NUM_TRAIN // 2, 'RandAugment left most virtual views unchanged'


def test_imagenet_pipeline_reads_the_folder_layout(imagenet):
    dataset = _dataset(pair_config('vrm', 'resnet34-resnet18', 'in1k'), imagenet)
    assert len(dataset) == 4
    real, virtual = dataset[0]['inputs']
    assert real.shape == virtual.shape == (3, 224, 224)
    labels = [int(line.split()[1]) for line in
              Path(imagenet, 'meta', 'train.txt').read_text().splitlines()]
    assert [dataset[i]['data_samples'].gt_label.item() for i in range(4)] == labels


# -- training steps --------------------------------------------------------------

def _tiny_run_options(data_root, teacher_ckpt=None):
    """--cfg-options for a one-epoch run of NUM_TRAIN images in batches of 4,
    no validation, no checkpoint."""
    options = {
        'train_dataloader.batch_size': 4,
        'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 10,
        'default_hooks.checkpoint.interval': -1,
        'default_hooks.checkpoint.save_last': False,
        'default_hooks.logger.interval': 1,
        'randomness.seed': 0,
    }
    # The validation loop is built before training starts, even when it never runs.
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options.update({f'{loader}.dataset.data_root': data_root,
                        f'{loader}.num_workers': 0, f'{loader}.persistent_workers': False})
    if teacher_ckpt is not None:
        options['model.teacher_ckpt'] = teacher_ckpt
    return options


@pytest.mark.parametrize('pair', CIFAR_PAIRS)
def test_cifar_vrm_config_trains_through_the_train_tool(pair, cifar100, unchecked_cifar_files,
                                                        teacher_ckpts, tmp_path):
    """The config as tools/train.py prepares and runs it, on the pipeline's two
    views: two iterations, finite VRM terms, the student updated."""
    path = CONFIGS / 'vrm' / f'vrm_{pair}_cifar100.py'
    teacher = teacher_ckpts(load(path).model.teacher)
    cfg = prepare_train_config(str(path), str(tmp_path),
                               cfg_options=_tiny_run_options(cifar100['root'], teacher))
    check_data_paths(cfg)
    isolate_run(cfg, pair)
    runner = build_runner(cfg)
    before = {k: v.clone() for k, v in runner.model.student.state_dict().items()}
    runner.train()
    assert runner.iter == NUM_TRAIN // 4
    scalars = runner.message_hub.log_scalars
    for key in ('loss', 'loss_vrm_sample', 'loss_vrm_class', 'kept_fraction'):
        value = scalars[f'train/{key}'].current()
        assert math.isfinite(value), key
    # The views differ, so the real-to-virtual edges carry a nonzero mismatch.
    assert scalars['train/loss_vrm_sample'].current() > 0
    after = runner.model.student.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_the_in_model_view_is_the_alternative(cifar100, unchecked_cifar_files, teacher_ckpts,
                                              tmp_path):
    """The VRM base's documented alternative: the plain pipeline and the
    distiller's photometric view."""
    path = CONFIGS / 'vrm' / 'vrm_resnet32x4-resnet8x4_cifar100.py'
    teacher = teacher_ckpts(load(path).model.teacher)
    plain = load(CONFIGS / 'students' / 'resnet8x4_cifar100.py').train_dataloader.dataset
    options = _tiny_run_options(cifar100['root'], teacher)
    options.update({'train_dataloader.dataset.pipeline': plain.pipeline,
                    'model.virtual_view': dict(_delete_=True, type='PhotometricRandAugment',
                                               num_ops=2, magnitude=0.5)})
    cfg = prepare_train_config(str(path), str(tmp_path), cfg_options=options)
    isolate_run(cfg, 'in-model-view')
    runner = build_runner(cfg)
    runner.train()
    assert runner.message_hub.log_scalars['train/loss_vrm_sample'].current() > 0


_MMPRETRAIN_TRAIN = """
import runpy, sys
from mmpretrain.datasets import CIFAR100
CIFAR100.train_list = [[name, None] for name, _ in CIFAR100.train_list]
CIFAR100.test_list = [[name, None] for name, _ in CIFAR100.test_list]
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def test_mmpretrain_train_tool_runs_a_vrm_config(cifar100, teacher_ckpts, tmp_path):
    """mmpretrain's own tools/train.py, unmodified, in a process whose CIFAR100
    skips the md5 check of the released files."""
    import mmpretrain
    tool = Path(mmpretrain.__file__).parent / '.mim' / 'tools' / 'train.py'
    path = CONFIGS / 'vrm' / 'vrm_resnet32x4-resnet8x4_cifar100.py'
    teacher = teacher_ckpts(load(path).model.teacher)
    options = [f'{key}={value}' for key, value in
               _tiny_run_options(cifar100['root'], teacher).items()]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable, '-c', _MMPRETRAIN_TRAIN, str(tool), str(path), '--work-dir',
         str(tmp_path), '--cfg-options', *options],
        cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'loss_vrm_sample' in log and 'loss_vrm_class' in log


STEP_TESTED_ABOVE = {CONFIGS / 'vrm' / f'vrm_{pair}_cifar100.py' for pair in CIFAR_PAIRS}


@pytest.mark.parametrize('path', [p for p in ALL if p not in STEP_TESTED_ABOVE], ids=config_id)
def test_every_other_config_trains_a_step(path, cifar100, imagenet, unchecked_cifar_files,
                                          teacher_ckpts, tmp_path):
    """The twins, the students alone, the teachers and the ImageNet configs as
    tools/train.py runs them: one epoch of the generated data in the dataset's
    own format (two iterations on CIFAR-100, one on ImageNet), a finite loss,
    the trained network's weights changed."""
    in1k = path.stem.endswith('_in1k')
    model_cfg = load(path).model
    teacher = teacher_ckpts(model_cfg.teacher) if 'teacher' in model_cfg else None
    options = _tiny_run_options(imagenet if in1k else cifar100['root'], teacher)
    cfg = prepare_train_config(str(path), str(tmp_path), cfg_options=options)
    isolate_run(cfg, path.stem)
    runner = build_runner(cfg)
    trained = getattr(runner.model, 'student', runner.model)
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    runner.train()
    assert runner.iter == (1 if in1k else NUM_TRAIN // 4)
    assert math.isfinite(runner.message_hub.log_scalars['train/loss'].current())
    after = trained.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
