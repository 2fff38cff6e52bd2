"""The training loop: build everything from a :class:`RunConfig`, train epoch by epoch, validate, checkpoint.

Every epoch ends with an atomic ``last.pt`` (model + optimiser + schedule + sampler/RNG state + history + resolved
config + label names), so an interruption loses at most the running epoch, and ``--resume`` replays the remaining
epochs exactly: each epoch reseeds every generator from (seed, epoch, rank) before it starts.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ferkit.checkpoint import save_checkpoint
from ferkit.config import apply_overrides, to_dict
from ferkit.device import resolve_precision
from ferkit.errors import ConfigError
from ferkit.evaluation.metrics import confusion_matrix, summarize
from ferkit.evaluation.runner import label_map, predict
from ferkit.nn.optimize import to_channels_last
from ferkit.train import distributed
from ferkit.train.config import RunConfig, save_config
from ferkit.train.data import ShardSampler, build_split, make_loader, train_sampler
from ferkit.train.optim import SAM, build_optimizer
from ferkit.train.schedule import LRSchedule, set_lr
from ferkit.train.state import capture_rng, derive_seed, restore_rng, seed_everything, training_checkpoint
from ferkit.train.step import StepRunner, StepStats, TrainForward
from ferkit.train.tracking import Progress, TensorBoard, write_csv

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished (or early-stopped) run produced."""

    out_dir: Path
    epochs_done: int
    history: list[dict[str, Any]]
    best: dict[str, Any]
    stopped_early: bool = False
    files: dict[str, str] = field(default_factory=dict)


class Trainer:
    """Owns the model, data, optimiser and run state of one training run (one process of it under ``torchrun``).

    Args:
        cfg: the resolved run config.
        out_dir: run folder (checkpoints, metrics, plots).
        resume: an already-read training checkpoint to continue from.
        datasets: ``(train, val)`` data sets to use instead of building them from ``cfg.data`` (``val`` may be None).
    """

    def __init__(self, cfg: RunConfig, out_dir: str | Path, *, resume: Mapping[str, Any] | None = None,
                 datasets: tuple[Any, Any] | None = None):
        self.out = Path(out_dir)
        self.dist = distributed.setup(cfg.train.device)
        self.cfg = self._resolve_seed(cfg)
        self._configure_torch()
        self.precision = resolve_precision(self.cfg.train.precision, self.dist.device)  # fp16 on CPU: ConfigError
        self.micro_batch = self._micro_batch()
        self.test_set = None
        self.train_set, self.val_set = datasets if datasets is not None else self._build_datasets()
        seed_everything(derive_seed(self.cfg.train.seed, "init"))  # same initial weights for the same seed
        self.model = self._build_model(resume)
        self._prepare_model()
        self._attach_transforms()
        self.optimizer = build_optimizer(self._trainable(), self.cfg.optim)
        o = self.cfg.optim
        self.sam = SAM(self.optimizer, o.sam_rho, o.sam_adaptive) if o.sam else None
        self.schedule = LRSchedule(self.cfg.schedule, self.cfg.optim.lr, self.cfg.train.epochs)
        self.runner = StepRunner(self._wrap(), self.optimizer, device=self.dist.device,
                                 precision=self.precision, sam=self.sam, grad_clip=self.cfg.optim.grad_clip,
                                 channels_last=self.cfg.model.channels_last)
        self.epoch, self.global_step, self.history, self.stopped_early = 0, 0, [], False
        self.best: dict[str, Any] = {"metric": self.cfg.train.monitor, "value": None, "epoch": None}
        self.bad_epochs = 0
        if resume is not None:
            self._restore(resume["training"])
        self.tb = TensorBoard(self.out / "tensorboard", self.cfg.output.tensorboard and self.dist.is_main,
                              purge_step=self.global_step if resume is not None else None)

    # -- set-up ----------------------------------------------------------------------------------------------------
    def _resolve_seed(self, cfg: RunConfig) -> RunConfig:
        if cfg.train.seed is not None:
            return cfg
        drawn = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
        seed = distributed.broadcast_object(drawn if self.dist.is_main else None)
        log.info("train.seed is null: drew seed %d (recorded in config.yaml)", seed)
        return apply_overrides(cfg, {"train.seed": seed})

    def _configure_torch(self) -> None:
        t = self.cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if self.dist.device.type == "cuda":
            torch.backends.cudnn.benchmark = not t.deterministic
            torch.backends.cudnn.deterministic = t.deterministic

    def _micro_batch(self) -> int:
        t = self.cfg.train
        parts = self.dist.world_size * t.accum_steps
        if t.batch_size % parts:
            raise ConfigError(f"config key 'train.batch_size' ({t.batch_size}) must be divisible by world size "
                              f"({self.dist.world_size}) x 'train.accum_steps' ({t.accum_steps})")
        return t.batch_size // parts

    def _build_datasets(self) -> tuple[Any, Any]:
        d = self.cfg.data
        train = build_split(d, d.train_split, d.max_train_samples)
        val = build_split(d, d.val_split, d.max_val_samples) if d.val_split else None
        if val is not None and tuple(val.label_names) != tuple(train.label_names):
            val = val.with_label_names(train.label_names, drop_missing=True)
        # built now so that a wrong test split fails before training, not after it
        self.test_set = build_split(d, self.cfg.eval.test_split, None) if self.cfg.eval.test_split else None
        if self.dist.is_main:
            log.info("train: %s/%s, %d images %s", d.name, d.train_split, len(train), train.class_counts())
            if val is not None:
                log.info("val: %s/%s, %d images", d.name, d.val_split, len(val))
        return train, val

    def _build_model(self, resume: Mapping[str, Any] | None):
        from ferkit.models import create_model

        m = self.cfg.model
        ckpt = resume if resume is not None else m.init_checkpoint
        model = create_model(m.name, label_names=list(self.train_set.label_names), checkpoint=ckpt,
                             reset_head=m.reset_head and resume is None, trust_checkpoint=m.trust_checkpoint,
                             **m.options)
        _freeze(model, m.freeze)
        model.to(self.dist.device)
        if m.channels_last:
            to_channels_last(model)
        return model

    def _prepare_model(self) -> None:
        """Call the model's ``prepare_training`` hook (e.g. MPA-FER prototypes) on untransformed images; the main
        process runs first so the others find its cache."""
        hook = self.model.prepare_training
        kwargs = {"cache_dir": self.out / "cache", "device": self.dist.device, "batch_size": self.micro_batch,
                  "num_workers": self.cfg.data.num_workers}
        if self.dist.is_main:
            hook(self.train_set, **kwargs)
        distributed.barrier()
        if not self.dist.is_main:
            hook(self.train_set, **kwargs)

    def _attach_transforms(self) -> None:
        from ferkit.models.transforms import build_transform

        d, dc = self.cfg.data, self.model.data_config
        self._record_eval_input()
        if getattr(self.train_set, "transform", None) is None:
            self.train_set.transform = build_transform(dc, True, dataset=d.name, **d.train_transform)
        if self.val_set is not None and getattr(self.val_set, "transform", None) is None:
            self.val_set.transform = build_transform(dc, False, dataset=d.name, **d.eval_transform)

    def _record_eval_input(self) -> None:
        """Write the run's evaluation input (size, normalisation, interpolation, grey) into the model's
        ``data_config``, which its checkpoints carry: eval / predict / export then feed what training fed."""
        from ferkit.models.transforms import resolve_transform_config

        t = resolve_transform_config(self.model.data_config, False, dataset=self.cfg.data.name,
                                     **self.cfg.data.eval_transform)
        self.model.data_config = {**self.model.data_config, "input_size": t.input_size, "mean": tuple(t.mean),
                                  "std": tuple(t.std), "interpolation": t.interpolation, "grayscale": t.grayscale}

    def _trainable(self) -> list[dict[str, Any]]:
        """Parameter groups: one per ``optim.lr_scales`` factor in use (``lr_scale`` read by ``set_lr``)."""
        params = list(self.model.trainable_parameters())
        names = {id(p): n for n, p in self.model.named_parameters()}
        scales = self.cfg.optim.lr_scales
        groups: dict[float, list[torch.nn.Parameter]] = {}
        for p in params:
            name = names.get(id(p), "")
            match = max((k for k in scales if name.startswith(k)), key=len, default=None)
            groups.setdefault(float(scales[match]) if match else 1.0, []).append(p)
        if self.dist.is_main:
            log.info("%s: %s trainable parameters%s", self.cfg.model.name, f"{sum(p.numel() for p in params):,}",
                     "".join(f"; {sum(p.numel() for p in g):,} at lr x{k:g}" for k, g in groups.items() if k != 1))
        return [{"params": g, "lr_scale": k} for k, g in groups.items()]

    def _wrap(self) -> torch.nn.Module:
        fwd = TrainForward(self.model, self.cfg.train.label_smoothing)
        if not self.dist.distributed:
            return fwd
        ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
        return DistributedDataParallel(fwd, device_ids=ids,
                                       find_unused_parameters=self.cfg.train.find_unused_parameters)

    # -- state -----------------------------------------------------------------------------------------------------
    def _restore(self, s: Mapping[str, Any]) -> None:
        if s.get("world_size", 1) != self.dist.world_size:
            log.warning("resuming a run started with %d process(es) on %d: the data order per process changes",
                        s.get("world_size", 1), self.dist.world_size)
        self.optimizer.load_state_dict(s["optimizer"])
        if s.get("scaler"):
            self.runner.scaler.load_state_dict(s["scaler"])
        self.epoch, self.global_step = int(s["epoch"]), int(s["global_step"])
        self.history = [dict(h) for h in s["history"]]
        self.best, self.bad_epochs = dict(s["best"]), int(s["bad_epochs"])
        self.stopped_early = bool(s.get("stopped_early", False))
        restore_rng(s["rng"])
        log.info("resumed after epoch %d (step %d); best %s = %s", self.epoch, self.global_step, self.best["metric"],
                 self.best["value"])

    def training_state(self) -> dict[str, Any]:
        """The ``training`` section of ``last.pt``."""
        return {"epoch": self.epoch, "global_step": self.global_step, "optimizer": self.optimizer.state_dict(),
                "scheduler": {**self.schedule.state_dict(), "last_lr": self.optimizer.param_groups[0]["lr"]},
                "scaler": self.runner.scaler.state_dict() if self.runner.scaler.is_enabled() else None,
                "sampler": {"kind": self.cfg.data.sampler, "seed": self.cfg.train.seed, "epoch": self.epoch},
                "rng": capture_rng(), "history": self.history, "best": self.best, "bad_epochs": self.bad_epochs,
                "stopped_early": self.stopped_early, "world_size": self.dist.world_size, "config": to_dict(self.cfg)}

    def _meta(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        return {"epoch": self.epoch, "dataset": self.cfg.data.name, "run": self.cfg.name,
                "metrics": {k: v for k, v in last.items() if k.startswith("val_")}, "config": to_dict(self.cfg)}

    def save(self, improved: bool) -> None:
        """``best.pt`` (model checkpoint) when the monitored metric improved, then ``last.pt`` (training state)."""
        if improved:
            save_checkpoint(self.model.checkpoint_dict(**self._meta()), self.out / "best.pt")
        save_checkpoint(training_checkpoint(self.model.checkpoint_dict(**self._meta()), self.training_state()),
                        self.out / "last.pt")

    # -- loop ------------------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train the remaining epochs; returns the run summary. Ctrl-C leaves the last finished epoch on disk."""
        cfg = self.cfg
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out / "config.yaml")
        try:
            while self.epoch < cfg.train.epochs and not self.stopped_early:
                train = self.train_epoch(self.epoch)
                val = self.validate() if self.val_set is not None else None
                self._end_epoch(train, val)
        except KeyboardInterrupt:
            if self.dist.is_main:
                log.warning("interrupted in epoch %d; %s holds %d finished epoch(s). Continue with: "
                            "ferkit train --resume %s", self.epoch + 1, self.out / "last.pt", self.epoch, self.out)
            raise
        finally:
            self.tb.close()
        return TrainResult(self.out, self.epoch, self.history, self.best, self.stopped_early)

    def _seed_epoch(self, epoch: int) -> int:
        seed = derive_seed(self.cfg.train.seed, epoch, self.dist.rank)
        seed_everything(seed)
        return seed

    def _steps(self, loader: DataLoader) -> Iterator[list]:
        group = []
        for batch in loader:
            group.append(batch)
            if len(group) == self.cfg.train.accum_steps:
                yield group
                group = []
        if group:
            yield group

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training data; returns train loss / accuracy (all processes) and throughput."""
        cfg, seed = self.cfg, self._seed_epoch(epoch)
        sampler = train_sampler(self.train_set, cfg.data.sampler, cfg.train.seed, self.dist.world_size, self.dist.rank)
        sampler.set_epoch(epoch)
        loader = make_loader(self.train_set, self.micro_batch, sampler, num_workers=cfg.data.num_workers, seed=seed,
                             drop_last=cfg.data.drop_last, pin_memory=self.dist.device.type == "cuda")
        n_steps = math.ceil(len(loader) / cfg.train.accum_steps)
        n_steps = min(n_steps, cfg.train.max_steps_per_epoch or n_steps)
        progress = Progress(cfg.output.progress, n_steps, epoch, cfg.train.epochs, cfg.output.log_every,
                            enabled=self.dist.is_main)
        self.model.train()
        total, start = StepStats(), time.perf_counter()
        for i, batches in enumerate(self._steps(loader)):
            if i >= n_steps:
                break
            set_lr(self.optimizer, self.schedule.lr_at(epoch + i / n_steps))
            stats = self.runner(batches)
            self._merge(total, stats)
            self.global_step += 1
            progress.update(i + 1, total.loss_sum / max(total.count, 1), total.correct / max(total.count, 1),
                            total.count * self.dist.world_size)
            if self.global_step % cfg.output.log_every == 0:
                lr = self.optimizer.param_groups[0]["lr"]
                self.tb.scalars({"loss": stats.loss_sum / max(stats.count, 1), "lr": lr}, self.global_step, "step/")
        progress.close()
        return self._train_metrics(total, time.perf_counter() - start)

    @staticmethod
    def _merge(total: StepStats, s: StepStats) -> None:
        total.loss_sum += s.loss_sum
        total.correct += s.correct
        total.count += s.count
        for k, v in s.parts.items():
            total.parts[k] = total.parts.get(k, 0.0) + v

    def _train_metrics(self, total: StepStats, seconds: float) -> dict[str, Any]:
        keys = sorted(total.parts)
        t = torch.tensor([total.loss_sum, total.correct, total.count, *[total.parts[k] for k in keys]],
                         dtype=torch.float64)
        t = distributed.all_reduce_sum(t.to(self.dist.device)).cpu()
        n = max(t[2].item(), 1)
        out = {"lr": self.optimizer.param_groups[0]["lr"], "train_loss": t[0].item() / n,
               "train_accuracy": t[1].item() / n, "images_per_second": t[2].item() / max(seconds, 1e-9),
               "epoch_seconds": seconds}
        out.update({f"train_{k}": t[3 + i].item() / n for i, k in enumerate(keys)})
        return out

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        """Metrics on the validation split, every sample counted once across processes."""
        names = self.model.label_names
        bs = self.cfg.eval.batch_size or self.micro_batch
        loader = DataLoader(self.val_set, batch_size=bs, num_workers=self.cfg.data.num_workers,
                            sampler=ShardSampler(len(self.val_set), self.dist.world_size, self.dist.rank))
        p = predict(self.model, loader, self.dist.device, label_map(names, self.val_set.label_names),
                    precision=self.precision, channels_last=self.cfg.model.channels_last)
        cm = confusion_matrix(p.targets[p.targets >= 0], p.preds[p.targets >= 0], len(names)).double()
        packed = distributed.all_reduce_sum(torch.cat([cm.flatten(), torch.tensor([p.loss_sum], dtype=torch.float64)])
                                            .to(self.dist.device)).cpu()
        cm = packed[:-1].round().long().view(len(names), len(names))
        s = summarize(cm, names)
        return {"loss": packed[-1].item() / max(s["num_samples"], 1), "accuracy": s["accuracy"],
                "mean_class_accuracy": s["mean_class_accuracy"], "macro_f1": s["macro_f1"]}

    def _improved(self, val: Mapping[str, Any] | None) -> bool:
        if val is None:
            return False
        key, value, best = self.best["metric"], val[self.best["metric"]], self.best["value"]
        delta = self.cfg.train.min_delta
        better = best is None or (value < best - delta if key == "loss" else value > best + delta)
        if better:
            self.best.update(value=value, epoch=self.epoch + 1)
        return better

    def _end_epoch(self, train: dict[str, Any], val: dict[str, Any] | None) -> None:
        row = {"epoch": self.epoch + 1, **train, **{f"val_{k}": v for k, v in (val or {}).items()}}
        self.history.append(row)
        improved = self._improved(val)
        self.bad_epochs = 0 if improved or val is None else self.bad_epochs + 1
        patience = self.cfg.train.early_stopping
        self.epoch += 1
        if patience is not None and self.bad_epochs >= patience:
            self.stopped_early = True
        if self.dist.is_main:
            self.save(improved)
            self._report_epoch(row)
        distributed.barrier()
        if self.stopped_early and self.dist.is_main:
            log.info("early stopping: no %s improvement for %d epoch(s); best %.4f at epoch %s", self.best["metric"],
                     patience, self.best["value"], self.best["epoch"])

    def _report_epoch(self, row: dict[str, Any]) -> None:
        write_csv(self.history, self.out / "metrics.csv")
        self.tb.scalars(row, self.global_step, prefix="epoch/")
        val = f"  val loss {row['val_loss']:.4f} acc {100 * row['val_accuracy']:.2f}%" if "val_loss" in row else ""
        log.info("epoch %d/%d  train loss %.4f acc %.2f%%%s  lr %.3g  %.1f img/s  %.0f s", row["epoch"],
                 self.cfg.train.epochs, row["train_loss"], 100 * row["train_accuracy"], val, row["lr"],
                 row["images_per_second"], row["epoch_seconds"])
        if self.cfg.output.plots:
            try:
                from ferkit.evaluation.plots import plot_curves

                plot_curves(self.history, self.out / "curves.png", title=self.cfg.name)
            except ImportError as e:
                log.warning("no training curves: %s", e)


def _freeze(model: torch.nn.Module, prefixes: list[str]) -> None:
    """Set ``requires_grad=False`` on parameters whose name starts with one of ``prefixes`` (each must match)."""
    for prefix in prefixes:
        hit = [p for n, p in model.named_parameters() if n.startswith(prefix)]
        if not hit:
            raise ConfigError(f"config key 'model.freeze': no parameter name starts with {prefix!r}")
        for p in hit:
            p.requires_grad_(False)
