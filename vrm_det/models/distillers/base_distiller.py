"""What every distiller shares: building the student, loading and freezing the
teacher, building the distillation loss and warming up its weight.

Detection and classification distillers subclass :class:`BaseDistiller` and
implement :meth:`BaseDistiller.loss`; validation and testing use the student.
"""
import copy
import os.path as osp
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from vrm_det.checkpoint import STUDENT_PREFIX
from vrm_det.functional.shards import vertices_sharded
from vrm_det.functional.validation import NonFiniteLogitsError
from vrm_det.models.losses import DistillLoss
from vrm_det.registry import MMDET_MODELS

from .gather import gather_graph, gathering_world_size, resolve_gather_mode, shard_layout
from .options import check_config_options, check_options
from .preprocessing import ImageNormalisation, pad_to_divisor, renormalise

# Checkpoint locations mmengine's CheckpointLoader fetches itself (model zoos, URLs).
_REMOTE_PREFIXES = ('http://', 'https://', 'torchvision://', 'open-mmlab://', 'openmmlab://',
                    'mmcls://', 'pavi://', 's3://')


def _load_teacher_state(teacher: nn.Module, checkpoint_path: str) -> None:
    """Load ``checkpoint_path`` into ``teacher`` strictly, with a clear error."""
    remote = checkpoint_path.startswith(_REMOTE_PREFIXES)
    if not remote and not osp.isfile(osp.expanduser(checkpoint_path)):
        raise FileNotFoundError(
            f'teacher_ckpt {checkpoint_path} does not exist: train the teacher first '
            '(tools/train.py with its config) or point teacher_ckpt at its checkpoint')
    checkpoint = CheckpointLoader.load_checkpoint(checkpoint_path, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'teacher_ckpt {checkpoint_path} holds no state dict')
    state = {key[len('module.'):] if key.startswith('module.') else key: value
             for key, value in state.items()}
    if state and all(key.startswith(STUDENT_PREFIX) for key in state):
        raise ValueError(
            f'teacher_ckpt {checkpoint_path} is a distiller checkpoint (its weights are a '
            "student's, under 'student.'): extract them with tools/convert_to_student.py "
            'and give that file, with the student\'s config as teacher')
    own = teacher.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    mismatched = [f'{key} {tuple(state[key].shape)} != {tuple(own[key].shape)}'
                  for key in own if key in state and state[key].shape != own[key].shape]
    if missing or unexpected or mismatched:
        def listing(keys):
            return ', '.join(keys[:8]) + (f' ... ({len(keys)} in all)' if len(keys) > 8 else '')
        raise ValueError(
            f'teacher_ckpt {checkpoint_path} does not match the teacher config. '
            f'Missing keys: [{listing(missing)}]. Unexpected keys: [{listing(unexpected)}]. '
            f'Shape mismatches (checkpoint != config): [{listing(mismatched)}]. '
            'Check that the teacher config describes the network the checkpoint was '
            'trained with (a distiller checkpoint must first be converted with '
            'tools/convert_to_student.py).')
    teacher.load_state_dict(state, strict=True)


def _teacher_model_config(teacher: Union[dict, str]) -> dict:
    """The teacher's model config: a dict, a config file, or ``pkg::path``."""
    if not isinstance(teacher, str):
        return teacher
    if '::' in teacher:  # a config shipped in a package, e.g. 'mmdet::faster_rcnn/...'
        cfg = get_config(teacher)
    elif not osp.isfile(teacher):
        raise FileNotFoundError(
            f'teacher config file {teacher} does not exist: set teacher to the path of the '
            "teacher's config (relative to the working directory, or "
            "'{{fileDirname}}/...' for a path relative to the distiller's config)")
    else:
        cfg = Config.fromfile(teacher)
    return _with_data_preprocessor(cfg.model, cfg.get('data_preprocessor'))


def _with_data_preprocessor(model: dict, data_preprocessor: Optional[dict]) -> dict:
    """``model`` with ``data_preprocessor`` as its preprocessor unless it names
    its own, as mmengine's Runner builds a config whose normalisation is a
    top-level ``data_preprocessor`` (mmpretrain's convention)."""
    if data_preprocessor is None or model.get('data_preprocessor') is not None:
        return model
    model = copy.deepcopy(model)
    model['data_preprocessor'] = data_preprocessor
    return model


def _loaded_rgb(preprocessor: nn.Module) -> bool:
    """Whether the images reach ``preprocessor`` in RGB order.

    No setting records the loaded order; each library's convention decides.
    mmdet's and mmengine's preprocessors (``bgr_to_rgb``) get images that mmcv
    loaded BGR, so their model sees RGB iff ``bgr_to_rgb`` (caffe-style configs
    leave it off and see BGR). mmpretrain's ``ClsDataPreprocessor`` (``to_rgb``)
    converts images loaded BGR from files (ImageNet: ``to_rgb=True``) and leaves
    the RGB arrays of CIFAR, MNIST and Fashion-MNIST as they are
    (``to_rgb=False``): its model sees RGB either way.
    """
    if getattr(preprocessor, '_channel_conversion', None) is None and hasattr(
            preprocessor, 'to_rgb'):
        return not preprocessor.to_rgb
    return False


@contextmanager
def _running_stats_frozen(model: nn.Module):
    """Batch-norm layers normalise with batch statistics but do not update
    their running statistics (momentum 0) inside this block."""
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training]
    saved = [m.momentum for m in layers]
    for layer in layers:
        layer.momentum = 0.0
    try:
        yield
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum


def _log_distill_grad_norm(grad: Tensor, loss_scale: float = 1.0) -> None:
    """Backward hook: the norm of the distillation gradient on the student's
    logits, with the mixed-precision loss scale divided out, and the iteration
    it belongs to (so that a hook never records a stale value)."""
    hub = MessageHub.get_current_instance()
    hub.update_scalar('train/distill_grad_norm',
                      float(torch.linalg.vector_norm(grad.float())) / loss_scale)
    hub.update_info('distill_grad_norm_iter', hub.get_info('iter', 0))


class BaseDistiller(BaseModel):
    """Student, frozen teacher and distillation loss.

    The teacher is kept out of the module tree: it is not in ``parameters()``
    (so no optimizer sees it), not in ``state_dict()`` (checkpoints hold the
    student only, and resuming reloads the teacher from ``teacher_ckpt``), not
    wrapped for gradient synchronisation, and stays in eval mode whatever
    ``train()`` is called with. Device moves (``to``, ``cuda``) reach it.

    Args:
        student (dict): Config of the student model.
        teacher (dict | str): Config of the teacher model, or the path of a
            config file whose ``model`` is the teacher.
        teacher_ckpt (str): Checkpoint of the teacher, loaded strictly.
        distill_loss (dict): Config of a distillation loss
            (e.g. ``dict(type='VRMLoss')``); see :mod:`vrm_det.models.losses`.
        virtual_view (dict, optional): Config of the augmentation that makes
            the virtual images from RGB images in [0, 255], e.g.
            ``dict(type='PhotometricRandAugment', num_ops=2)``. Required when
            the loss (or the subclass, ``virtual_view_needed``) uses it.
        virtual_view_needed (bool): The subclass needs the virtual view even
            when the loss does not.
        distill_warmup_iters (int): The distillation losses are scaled by
            ``min(1, iter / distill_warmup_iters)``; 0 disables the warm-up.
        gather_vertices (bool | str): In a multi-process run, build one
            graph from every process's vertices instead of one graph per
            process (False): each process's gradient flows back to its own
            logits and the pruning percentile is the whole graph's.
            ``'sharded'``: each process computes its share of the graph
            (VRMLoss with vector edges and the l2 penalty, no KD term);
            ``'replicated'``: every process computes all of it (any loss);
            True: sharded where the loss allows, else replicated. See
            :mod:`.gather`. No effect in one process.
        data_preprocessor (dict, optional): The student's data preprocessor
            when its config names none; mmengine's Runner passes a config's
            top-level ``data_preprocessor`` here (mmpretrain's configs keep
            the normalisation there).
        init_cfg (dict, optional): Initialisation config.
    """
    #: Registry that builds the student and the teacher.
    model_registry = MMDET_MODELS

    def __new__(cls, *args, **options):
        # A misspelled option fails here, naming the closest one.
        check_options(cls, options, where='model')
        return super().__new__(cls)

    def __init__(self, student: dict, teacher: Union[dict, str], teacher_ckpt: str,
                 distill_loss: dict, virtual_view: Optional[dict] = None,
                 virtual_view_needed: bool = False, distill_warmup_iters: int = 0,
                 gather_vertices: Union[bool, str] = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not teacher_ckpt:
            raise ValueError('teacher_ckpt is required: the path of the trained teacher')
        if distill_warmup_iters < 0:
            raise ValueError(f'distill_warmup_iters={distill_warmup_iters} must be >= 0')
        student_model = self.model_registry.build(
            _with_data_preprocessor(student, data_preprocessor))
        super().__init__(data_preprocessor=student_model.data_preprocessor, init_cfg=init_cfg)
        self.student = student_model

        teacher_model = self.model_registry.build(_teacher_model_config(teacher))
        # Before loading: a class-count mismatch is the clearer message.
        self.check_compatible(student_model, teacher_model)
        _load_teacher_state(teacher_model, teacher_ckpt)
        teacher_model.requires_grad_(False)
        teacher_model.eval()
        self._check_teacher_preprocessor(teacher_model.data_preprocessor)
        # Plain attribute, not a submodule: see the class docstring.
        object.__setattr__(self, '_teacher', teacher_model)
        self.teacher_ckpt = teacher_ckpt

        check_config_options(MMDET_MODELS, distill_loss, where='model.distill_loss')
        self.distill_loss = MMDET_MODELS.build(distill_loss)
        if not isinstance(self.distill_loss, DistillLoss):
            raise TypeError(f'distill_loss must build a vrm_det distillation loss, got '
                            f'{type(self.distill_loss).__name__}')
        self.distill_warmup_iters = distill_warmup_iters
        #: How the graph spans the processes: None (one per process),
        #: 'sharded' or 'replicated'.
        self.gather_mode = resolve_gather_mode(gather_vertices, self.distill_loss)

        self.uses_virtual_view = self.distill_loss.uses_virtual_view or virtual_view_needed
        if self.uses_virtual_view and virtual_view is None:
            raise ValueError(f'{type(self.distill_loss).__name__} (or an option of the '
                             'distiller) needs the virtual view: set virtual_view, e.g. '
                             "dict(type='PhotometricRandAugment', num_ops=2)")
        if virtual_view:
            check_config_options(MMDET_MODELS, virtual_view, where='model.virtual_view')
        self.virtual_view = MMDET_MODELS.build(virtual_view) if virtual_view else None
        #: Steps whose distillation loss was skipped for non-finite logits (AMP).
        self.skipped_steps = 0
        #: Steps whose graph had fewer than two vertices (no edges: the loss is zero).
        self.edgeless_steps = 0
        # The factor by which the optimizer wrapper scales the loss before
        # backward (mixed precision); set every training step.
        self._loss_scale = 1.0

    def _check_teacher_preprocessor(self, preprocessor: nn.Module) -> None:
        """Refuse teacher preprocessing that would move pixels relative to the
        RoIs; report a normalisation that differs from the student's."""
        augments = getattr(preprocessor, 'batch_augments', None)
        if augments:
            names = ', '.join(type(a).__name__ for a in augments)
            raise ValueError(
                "the teacher's data_preprocessor has batch_augments "
                f'({names}): they resize or move the images, so the '
                "teacher would not see the student's pixels where its RoIs are. Remove "
                "batch_augments from the teacher config's data_preprocessor.")
        student, teacher = (ImageNormalisation.of(self.data_preprocessor),
                            ImageNormalisation.of(preprocessor))
        # Decided once here: comparing the settings every step would copy them
        # to the host every step.
        self._teacher_renormalises = not teacher.same_pixels_as(student)
        if self._teacher_renormalises:
            MMLogger.get_current_instance().info(
                'the teacher normalises images differently from the student: its inputs '
                f'are renormalised from the student\'s ({student.describe()}) to its own '
                f'({teacher.describe()})')

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher (not a submodule)."""
        return self._teacher

    def check_compatible(self, student: nn.Module, teacher: nn.Module) -> None:
        """Raise if the teacher's predictions cannot be matched to the student's."""

    def init_weights(self) -> None:
        # The teacher comes from its checkpoint; only the student is initialised.
        self.student.init_weights()

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self._teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self._teacher.eval()
        return self

    def distill_weight(self) -> float:
        """The warm-up factor of the distillation losses at the current iteration."""
        if not self.distill_warmup_iters:
            return 1.0
        iteration = MessageHub.get_current_instance().get_info('iter', 0)
        return min(1.0, (iteration + 1) / self.distill_warmup_iters)

    def distill(self, student_logits: Tensor, teacher_logits: Tensor,
                student_virtual_logits: Optional[Tensor] = None,
                teacher_virtual_logits: Optional[Tensor] = None,
                labels: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The distillation losses of one step, weighted by the warm-up.

        Beside the loss's own entries, ``distill_grad_norm`` is logged: the
        L2 norm of the gradient the (weighted) distillation loss sends to the
        student's logits, both views together, recorded during the backward
        pass, and ``distill_vertices``, the graph's vertex count; a graph of
        fewer than two vertices has no edges, its loss is zero and the step
        is counted in ``distill_edgeless_steps`` and logged. Non-finite logits
        end the run with an error naming the tensor and the iteration, except
        under mixed precision, where the step's distillation loss is skipped
        (as the grad scaler skips an overflowing step), counted in
        ``distill_skipped_steps`` and logged.

        Args:
            student_logits (Tensor): Shape (B, C), real view.
            teacher_logits (Tensor): Shape (B, C), real view.
            student_virtual_logits (Tensor, optional): Shape (B, C).
            teacher_virtual_logits (Tensor, optional): Shape (B, C).
            labels (Tensor, optional): Shape (B,).
        """
        logits = dict(student_logits=student_logits, teacher_logits=teacher_logits,
                      student_virtual_logits=student_virtual_logits,
                      teacher_virtual_logits=teacher_virtual_logits)
        if not self.distill_loss.uses_virtual_view:
            logits = {k: v for k, v in logits.items() if 'virtual' not in k}

        # One tensor for the student's rows of both views, so that one hook sees
        # the whole gradient the distillation loss sends to the student.
        student_rows = [logits['student_logits']]
        if 'student_virtual_logits' in logits:
            student_rows.append(logits['student_virtual_logits'])
        student_rows = torch.cat(student_rows)
        # Gathered rows carry world-size times their gradient (see gather.py):
        # the log shows what they contribute after DDP's averaging.
        gathered_from = gathering_world_size() if self.gather_mode else 1
        if student_rows.requires_grad:
            student_rows.register_hook(partial(_log_distill_grad_norm,
                                               loss_scale=self._loss_scale * gathered_from))
        num_rows = len(student_logits)
        logits['student_logits'] = student_rows[:num_rows]
        if 'student_virtual_logits' in logits:
            logits['student_virtual_logits'] = student_rows[num_rows:]
        shards = None
        if gathered_from > 1 and self.gather_mode == 'replicated':
            logits, labels = self._gather_graph(logits, labels)
        elif gathered_from > 1:
            # The sharded loss communicates: every process skips or stops alike.
            shards, nonfinite = shard_layout(logits)
            if nonfinite is not None:
                return self._skip_nonfinite(nonfinite, student_logits)
            # Its pruned-edge mask holds this process's rows only: no per-vertex
            # statistic of the pruned edges.
            labels = None

        try:  # the loss checks its inputs: one finiteness check per step
            with vertices_sharded(shards) if shards is not None else nullcontext():
                losses = self.distill_loss(**logits, labels=labels)
        except NonFiniteLogitsError as error:
            return self._skip_nonfinite(error.tensor_name, student_logits)
        num_vertices = shards.total if shards is not None else len(logits['student_logits'])
        losses['distill_vertices'] = torch.tensor(float(num_vertices))
        if num_vertices < 2:
            self._count_edgeless(num_vertices, losses)
        weight = self.distill_weight()
        if weight == 1.0:
            return losses
        return {key: value * weight if 'loss' in key else value
                for key, value in losses.items()}

    @staticmethod
    def _gather_graph(logits: Dict[str, Tensor], labels: Optional[Tensor]):
        """Every process's rows of each logit matrix, in one collective."""
        names = list(logits)
        widths = [logits[name].shape[1] for name in names]
        gathered, labels = gather_graph(torch.cat([logits[name] for name in names], 1), labels)
        return dict(zip(names, gathered.split(widths, 1))), labels

    def _count_edgeless(self, num_vertices: int, losses: Dict[str, Tensor]) -> None:
        self.edgeless_steps += 1
        losses['distill_edgeless_steps'] = torch.tensor(float(self.edgeless_steps))
        iteration = MessageHub.get_current_instance().get_info('iter', 0)
        MMLogger.get_current_instance().warning(
            f'iteration {iteration}: {num_vertices} graph vertices (fewer than 2: no edges), '
            f'the distillation loss is zero this step ({self.edgeless_steps} such steps so '
            "far); with roi_vertices='foreground' the batch had too few foreground RoIs")

    def _skip_nonfinite(self, name: str, student_logits: Tensor) -> Dict[str, Tensor]:
        iteration = MessageHub.get_current_instance().get_info('iter', 0)
        if not torch.is_autocast_enabled(student_logits.device.type):
            raise FloatingPointError(
                f'iteration {iteration}: {name} contains NaN or inf. The '
                f'{"teacher" if "teacher" in name else "student"} '
                'diverged or was fed invalid input; lower the learning rate or the '
                'distillation weights, or check the data (train with --amp to let the '
                'grad scaler skip overflowing steps).')
        self.skipped_steps += 1
        MMLogger.get_current_instance().warning(
            f'iteration {iteration}: {name} contains NaN or inf under mixed precision; '
            f'this step\'s distillation loss is skipped ({self.skipped_steps} so far)')
        return dict(distill_skipped_steps=torch.tensor(float(self.skipped_steps)))

    # -- the views ---------------------------------------------------------

    def make_virtual_inputs(self, inputs: Tensor,
                            image_sizes: Optional[Sequence[Tuple[int, int]]] = None
                            ) -> Optional[Tensor]:
        """The virtual view of a preprocessed (normalised) batch, normalised
        alike; None when nothing uses it.

        Args:
            inputs (Tensor): The batch, shape (N, 3, H, W), as the data
                preprocessor made it (normalised, padded to a common size).
            image_sizes (Sequence[tuple], optional): ``(height, width)`` of
                each image's valid region (mmdet's ``img_shape``). The view is
                made from that region alone and the padding is left as it is,
                so image statistics (autocontrast, equalize, contrast) never
                see the padding. None: the whole canvas is the image.

        The view receives RGB whatever order the model sees, which is RGB iff
        (the preprocessor converts channels) XOR (images are loaded RGB); see
        :func:`_loaded_rgb` for how the loaded order is decided.
        """
        if not self.uses_virtual_view:
            return None
        if image_sizes is None:
            image_sizes = [tuple(inputs.shape[-2:])] * len(inputs)
        if len(image_sizes) != len(inputs):
            raise ValueError(f'{len(image_sizes)} image sizes for {len(inputs)} images')
        normalisation = ImageNormalisation.of(self.data_preprocessor)
        # The view works on RGB pixels. to_loaded undoes the conversion, giving
        # the loaded order: flip it only when the images were loaded BGR.
        loaded_bgr = not _loaded_rgb(self.data_preprocessor)
        virtual = inputs.clone()
        for index, (height, width) in enumerate(image_sizes):
            loaded = normalisation.to_loaded(inputs[index:index + 1, :, :height, :width])
            view = self.virtual_view(loaded.flip(1) if loaded_bgr else loaded)
            virtual[index:index + 1, :, :height, :width] = normalisation.from_loaded(
                view.flip(1) if loaded_bgr else view)
        return virtual

    def _batch_norm_frozen(self) -> bool:
        return not any(m.training for m in self.student.modules() if isinstance(m, _BatchNorm))

    def student_features(self, inputs: Tensor, virtual: Optional[Tensor]):
        """Student features of the real view, and of both views stacked
        (real first) or None without a virtual view.

        With batch-norm frozen (eval-mode statistics) both views go through
        one batched forward. With batch-norm training they go separately, so
        that the real images' batch statistics are not mixed with the virtual
        ones (the student's task loss sees the statistics it would alone), and
        the virtual pass leaves the running statistics untouched: evaluation
        then normalises with the statistics of real images only.
        """
        if virtual is None:
            return self.student.extract_feat(inputs), None
        if self._batch_norm_frozen():
            both = self.student.extract_feat(torch.cat([inputs, virtual]))
            return tuple(level[:len(inputs)] for level in both), both
        real = self.student.extract_feat(inputs)
        with _running_stats_frozen(self.student):
            virt = self.student.extract_feat(virtual)
        return real, tuple(torch.cat(pair) for pair in zip(real, virt))

    @torch.no_grad()
    def teacher_features(self, inputs: Tensor, virtual: Optional[Tensor],
                         image_sizes: Optional[Sequence[Tuple[int, int]]] = None):
        """Teacher features of the real view, or of both views stacked, in one
        forward (the teacher is in eval mode, its batch-norm frozen).

        The batch comes normalised by the student's data preprocessor; it is
        renormalised as the teacher's own preprocessor would have made it
        (mean, std, channel order, padding; see :func:`renormalise`).
        """
        if virtual is not None:
            inputs = torch.cat([inputs, virtual])
            image_sizes = None if image_sizes is None else list(image_sizes) * 2
        teacher = ImageNormalisation.of(self.teacher.data_preprocessor)
        if self._teacher_renormalises:
            inputs = renormalise(inputs, ImageNormalisation.of(self.data_preprocessor), teacher,
                                 image_sizes)
        else:
            inputs = pad_to_divisor(inputs, teacher.pad_size_divisor, teacher.pad_value)
        return self.teacher.extract_feat(inputs)

    def record_loss_scale(self, optim_wrapper) -> None:
        """Remember the factor mmengine's AmpOptimWrapper multiplies the loss
        by before backward, so that the logged gradient norm is unscaled.
        Called every step, by :meth:`train_step` or by the multi-process
        wrapper (:class:`vrm_det.engine.DistillerDataParallel`)."""
        scaler = getattr(optim_wrapper, 'loss_scaler', None)
        self._loss_scale = float(scaler.get_scale()) if scaler is not None else 1.0

    def train_step(self, data, optim_wrapper):
        self.record_loss_scale(optim_wrapper)
        return super().train_step(data, optim_wrapper)

    def forward(self, inputs: Tensor, data_samples: Optional[List] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.student.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.student(inputs, data_samples, mode='tensor')
        raise RuntimeError(f'invalid mode {mode!r}: use loss, predict or tensor')

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        raise NotImplementedError
