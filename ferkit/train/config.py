"""Typed run configuration for ``ferkit train``: YAML file -> dataclasses -> ``--set key=value`` overrides.

A run config has seven sections (``model``, ``data``, ``optim``, ``schedule``, ``train``, ``output``, ``eval``) plus
descriptive top-level keys. Every key can be overridden with a dotted name (``optim.lr=1e-4``,
``model.options.landmark_bn_mode=eval``); an unknown key or a value of the wrong type raises
:class:`~ferkit.errors.ConfigError` naming the key, before anything is built.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ferkit.config import apply_overrides, diff, to_dict
from ferkit.errors import ConfigError


@dataclass(frozen=True)
class ModelSection:
    """What to train.

    Attributes:
        name: registered model name (``ferkit models``).
        options: passed to ``create_model`` (architecture fields such as ``landmark_bn_mode``, builder options such
            as ``ir50_weights`` / ``landmark_weights`` / ``clip_weights``).
        init_checkpoint: start from these weights (fine-tuning); the label order must match unless ``reset_head``.
        reset_head: with ``init_checkpoint``, replace the classifier for this data set's classes.
        trust_checkpoint: allow full unpickling of a legacy ``init_checkpoint`` (only for trusted files).
        channels_last: train in channels-last memory format (faster convolutions on CPU and recent GPUs).
        freeze: parameter-name prefixes kept frozen (e.g. ``image_net.net.levels.0`` for a backbone's first level).
    """

    name: str = "poster_v2"
    options: dict[str, Any] = field(default_factory=dict)
    init_checkpoint: str | None = None
    reset_head: bool = False
    trust_checkpoint: bool = False
    channels_last: bool = False
    freeze: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DataSection:
    """Where the images come from and how they are batched.

    Attributes:
        name, root: ``ferkit.data.build_dataset`` name and root folder.
        train_split, val_split: split names; ``val_split: null`` trains without validation (no best model).
        options: extra ``build_dataset`` options (e.g. ``label_rule`` for FERPlus, ``clean_only`` for FER2013).
        val_options: options for the validation and test splits, over ``options`` (e.g. FERPlus trained on soft
            ``targets: votes`` and validated with ``{targets: label, label_rule: majority}``).
        on_error: an unreadable image is ``skip``-ped (logged, replaced by the next readable sample with its own
            label) or ``raise``-s. Skipping keeps a long run alive; ``ferkit data check`` lists bad files upfront.
        train_transform, eval_transform: ``build_transform`` overrides (e.g. ``erasing_p``, ``input_size``).
        sampler: ``shuffle`` (uniform permutation per epoch) or ``balanced`` (class-balanced, with replacement).
        classes: train on these classes only, in this order (samples of other classes are dropped); ``null``: all.
        max_train_samples, max_val_samples: keep a random subset of this size (small runs), class-stratified
            (each class keeps its share) or, with ``balanced_subset``, the same count per class where available.
        subset_seed: seed of that subset (fixed across epochs and resumes).
        num_workers: DataLoader worker processes per training process.
        drop_last: drop the last incomplete batch of an epoch.
    """

    name: str = "rafdb"
    root: str = ""
    train_split: str = "train"
    val_split: str | None = "test"
    options: dict[str, Any] = field(default_factory=dict)
    val_options: dict[str, Any] = field(default_factory=dict)
    on_error: Literal["skip", "raise"] = "skip"
    train_transform: dict[str, Any] = field(default_factory=dict)
    eval_transform: dict[str, Any] = field(default_factory=dict)
    sampler: Literal["shuffle", "balanced"] = "shuffle"
    classes: list[str] | None = None
    max_train_samples: int | None = None
    max_val_samples: int | None = None
    balanced_subset: bool = False
    subset_seed: int = 0
    num_workers: int = 4
    drop_last: bool = False


@dataclass(frozen=True)
class OptimSection:
    """Optimiser. ``sam: true`` wraps it in SAM (Foret et al. 2021), as the official POSTER++ code does.

    Attributes:
        name: ``adam``, ``adamw`` or ``sgd``.
        lr, weight_decay: base learning rate and L2 / decoupled decay.
        momentum, nesterov: SGD only. betas, eps: Adam(W) only.
        sam, sam_rho, sam_adaptive: SAM wrapper and its neighbourhood size (ASAM when adaptive).
        grad_clip: clip the global gradient norm to this value before each optimiser step (``null``: off).
        lr_scales: parameter-name prefix -> learning-rate factor (e.g. ``{image_net: 0.3}`` for a pretrained
            backbone); the longest matching prefix wins, other parameters use 1.
    """

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    sam: bool = False
    sam_rho: float = 0.05
    sam_adaptive: bool = False
    grad_clip: float | None = None
    lr_scales: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleSection:
    """Learning-rate schedule, a pure function of the (fractional) epoch.

    Attributes:
        name: ``constant``, ``exponential`` (lr * gamma^epoch), ``cosine`` (to ``min_lr`` over ``cosine_epochs``,
            default ``train.epochs``) or ``step`` (lr * gamma^(epoch // step_size)).
        interval: update the rate once per ``epoch`` (official POSTER++ and Dassl) or every optimiser ``step``.
        warmup_epochs, warmup_lr: constant rate ``warmup_lr`` for the first epochs (CoOp/Dassl "constant" warm-up);
            the main schedule then starts from its beginning. Fractional values work with ``interval: step``.
        warmup_mode: ``constant`` (above) or ``linear`` (from ``warmup_lr`` up to the main schedule's first rate).
    """

    name: Literal["constant", "exponential", "cosine", "step"] = "constant"
    interval: Literal["epoch", "step"] = "epoch"
    gamma: float = 0.98
    step_size: int = 30
    min_lr: float = 0.0
    cosine_epochs: int | None = None
    warmup_epochs: float = 0
    warmup_lr: float = 1e-5
    warmup_mode: Literal["constant", "linear"] = "constant"


@dataclass(frozen=True)
class TrainSection:
    """Loop settings.

    Attributes:
        epochs: number of epochs.
        batch_size: images per optimiser step, summed over processes and accumulation steps (the papers' batch).
        accum_steps: gradient accumulation; micro-batch = batch_size / (world_size * accum_steps).
        precision: ``fp32``, ``bf16`` (autocast; CPU and CUDA), ``fp16`` (autocast + loss scaling; GPU only: on the
            CPU a ``ConfigError``, as in evaluation and inference) or ``auto`` (bf16 on a CUDA device that supports
            it and on a CPU with AMX / AVX512-BF16, else fp32 — bf16 is emulated and slower than fp32 on other CPUs).
            Rules: :func:`ferkit.device.resolve_precision`, :func:`ferkit.device.choose_precision`.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        threads: ``torch.set_num_threads`` per process (``null``: PyTorch's default).
        seed: base seed; every epoch reseeds from (seed, epoch, rank). ``null`` draws one and records it.
        deterministic: ask PyTorch for deterministic kernels (slower on CUDA).
        label_smoothing: cross-entropy label smoothing (models without their own ``training_loss``).
        max_steps_per_epoch: stop each epoch after this many optimiser steps (smoke runs).
        monitor: validation metric that selects ``best.pt`` and drives early stopping.
        early_stopping: stop after this many validations without improvement (``null``: off).
        min_delta: smallest change of ``monitor`` that counts as an improvement.
        find_unused_parameters: DistributedDataParallel option for models with unused trainable parameters.
    """

    epochs: int = 200
    batch_size: int = 144
    accum_steps: int = 1
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "fp32"
    device: str = "auto"
    threads: int | None = None
    seed: int | None = 0
    deterministic: bool = False
    label_smoothing: float = 0.0
    max_steps_per_epoch: int | None = None
    monitor: Literal["accuracy", "mean_class_accuracy", "macro_f1", "loss"] = "accuracy"
    early_stopping: int | None = None
    min_delta: float = 0.0
    find_unused_parameters: bool = False


@dataclass(frozen=True)
class OutputSection:
    """Where and how a run reports.

    Attributes:
        dir: run folder (``{name}`` is replaced by the run name); ``ferkit train --out`` overrides it.
        tensorboard: write TensorBoard event files under ``DIR/tensorboard``.
        progress: show a progress bar (``auto``: only on a terminal; otherwise a log line every ``log_every`` steps).
        log_every: optimiser steps between log lines / TensorBoard step scalars.
        plots: draw ``curves.png`` (loss and accuracy, train and validation) after every epoch.
    """

    dir: str = "runs/{name}"
    tensorboard: bool = True
    progress: Literal["auto", "bar", "log", "off"] = "auto"
    log_every: int = 50
    plots: bool = True


@dataclass(frozen=True)
class EvalSection:
    """Evaluation done by the training loop.

    Attributes:
        batch_size: validation batch per process (``null``: the training micro-batch).
        test_split: after training, evaluate ``best.pt`` on this split with the full report (``null``: skip).
    """

    batch_size: int | None = None
    test_split: str | None = None


@dataclass(frozen=True)
class RunConfig:
    """A complete training recipe.

    Attributes:
        name: run name (used in the output folder).
        description: one line about the recipe.
        follows: where the recipe's values come from (``code``, ``paper``, ``ferkit``) — see the YAML comments.
        targets: published results for this recipe (``{"accuracy": 92.21, ...}``), reported next to ours.
        plugins: modules (dotted names or ``.py`` paths) imported first, to register custom models or data sets.
    """

    name: str = "run"
    description: str = ""
    follows: str = "code"
    targets: dict[str, float] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    train: TrainSection = field(default_factory=TrainSection)
    output: OutputSection = field(default_factory=OutputSection)
    eval: EvalSection = field(default_factory=EvalSection)

    def validate(self) -> None:
        _positive(self, ("train.epochs", "train.batch_size", "train.accum_steps", "output.log_every"))
        if self.optim.lr <= 0:
            raise ConfigError(f"config key 'optim.lr' must be > 0, got {self.optim.lr}")
        if self.optim.sam and self.optim.sam_rho <= 0:
            raise ConfigError(f"config key 'optim.sam_rho' must be > 0 with SAM, got {self.optim.sam_rho}")
        if not 0.0 <= self.train.label_smoothing < 1.0:
            raise ConfigError(f"config key 'train.label_smoothing' must be in [0, 1), got {self.train.label_smoothing}")
        if self.train.early_stopping is not None and self.train.early_stopping < 1:
            raise ConfigError("config key 'train.early_stopping' must be >= 1 or null")
        for key in ("max_train_samples", "max_val_samples"):
            value = getattr(self.data, key)
            if value is not None and value < 1:
                raise ConfigError(f"config key 'data.{key}' must be >= 1 or null, got {value}")


def _positive(cfg: RunConfig, keys: tuple[str, ...]) -> None:
    for key in keys:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value < 1:
            raise ConfigError(f"config key {key!r} must be >= 1, got {value}")


#: Keys that may differ when resuming without ``--allow-changes``: they do not change the computation.
RESUME_SAFE_KEYS = ("data.root", "data.num_workers", "train.device", "train.threads", "output.", "description",
                    "eval.batch_size")


def load_config(path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None,
                base: Mapping[str, Any] | None = None) -> RunConfig:
    """Read a YAML recipe (or start from ``base``, a resolved config dict) and apply dotted ``overrides``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ConfigError: the YAML is malformed, or a key is unknown or has the wrong type (the message names it).
    """
    data: dict[str, Any] = dict(base or {})
    if path is not None:
        data = read_yaml(path)
    cfg = apply_overrides(RunConfig(), _flatten_sections(data))
    if overrides:
        cfg = apply_overrides(cfg, dict(overrides))
    return cfg


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """YAML mapping from ``path``; raises ``ConfigError`` for anything else."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of sections, got {type(data).__name__}")
    return data


def _flatten_sections(data: Mapping[str, Any]) -> dict[str, Any]:
    """``{"optim": {"lr": 1}}`` -> ``{"optim.lr": 1}`` for dataclass sections, so unknown keys get their full name."""
    sections = {f.name for f in dataclasses.fields(RunConfig)
                if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory())}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in sections:
            if not isinstance(value, Mapping):
                raise ConfigError(f"config section {key!r} must be a mapping, got {value!r}")
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def save_config(cfg: RunConfig, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML (atomically)."""
    import yaml

    from ferkit.checkpoint import atomic_write_bytes

    text = yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)
    atomic_write_bytes(path, lambda f: f.write(text.encode()))
    return Path(path)


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Differences between two resolved configs, split into (safe, significant) lists of ``"key: a -> b"`` lines."""
    safe, significant = [], []
    for line in diff(old, new):
        key = line.split(":", 1)[0]
        (safe if key.startswith(RESUME_SAFE_KEYS) else significant).append(line)
    return safe, significant
