"""``ferkit.train.train``: the one call behind ``ferkit train`` (fresh run or resume), plus the end-of-run report."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ferkit.checkpoint import atomic_write_bytes, read_checkpoint, remove_stale_temps
from ferkit.config import to_dict
from ferkit.errors import ConfigError
from ferkit.train import distributed
from ferkit.train.config import RunConfig, config_changes, load_config
from ferkit.train.plugins import import_plugins, plugin_key, require_consent
from ferkit.train.state import training_section
from ferkit.train.trainer import Trainer, TrainResult

log = logging.getLogger(__name__)


def resolve_resume(resume: str | os.PathLike, config: str | os.PathLike | RunConfig | None = None,
                   overrides: Mapping[str, Any] | None = None, allow_changes: bool = False, *,
                   trust_checkpoint: bool = False) -> tuple[RunConfig, dict[str, Any], Path]:
    """Read a run folder's ``last.pt`` (or a checkpoint path) and decide the config to continue with.

    Without ``config`` / ``overrides`` the saved config is used. Otherwise the new config is compared with the saved
    one: differences other than paths, workers, device and output settings raise a ``ConfigError`` listing every
    ``key: old -> new`` unless ``allow_changes``. Temporaries left in the run folder by an interrupted save are
    removed. ``trust_checkpoint`` allows full unpickling of a ``last.pt`` that holds Python objects.

    Returns:
        (config, checkpoint dict, run folder)
    """
    path = Path(resume)
    ckpt_path = path / "last.pt" if path.is_dir() else path
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"nothing to resume: {ckpt_path} does not exist (pass a run folder or its last.pt)")
    ckpt = read_checkpoint(ckpt_path, trust=trust_checkpoint)
    for name in ("last.pt", "best.pt"):
        remove_stale_temps(ckpt_path.parent / name)
    saved = training_section(ckpt, str(ckpt_path))["config"]
    if config is None and not overrides:
        return load_config(base=saved), ckpt, ckpt_path.parent
    if isinstance(config, RunConfig):
        new = config
    else:
        new = load_config(config, overrides) if config is not None else load_config(base=saved, overrides=overrides)
    if new.train.seed is None:
        new = load_config(base=to_dict(new), overrides={"train.seed": saved["train"]["seed"]})
    safe, significant = config_changes(saved, to_dict(new))
    if significant and not allow_changes:
        raise ConfigError("the config differs from the one the run was started with:\n  " + "\n  ".join(significant)
                          + "\nresume without these changes, or pass --allow-changes to continue with the new values")
    for line in safe + significant:
        log.warning("resuming with a changed config: %s", line)
    return new, ckpt, ckpt_path.parent


def train(config: RunConfig | str | os.PathLike | None = None, *, overrides: Mapping[str, Any] | None = None,
          out_dir: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
          allow_changes: bool = False, datasets: tuple[Any, Any] | None = None, plugins: Sequence[str] = (),
          trust_plugins: bool = False, trust_checkpoint: bool = False) -> TrainResult:
    """Train from a recipe (YAML path or :class:`RunConfig`) or continue a run.

    Args:
        config: recipe; optional with ``resume`` (the run's own config is used).
        overrides: dotted ``{"optim.lr": 1e-4}`` overrides.
        out_dir: run folder (default ``output.dir``; with ``resume``, the run's folder).
        resume: run folder or ``last.pt`` to continue.
        allow_changes: let a resumed run use a config that differs from its saved one.
        datasets: ``(train, val)`` data sets instead of ``config.data`` (Python API only).
        plugins: modules or ``.py`` files to import first (CLI ``--plugin``); a fresh run adds them to its config's
            ``plugins``. With ``resume`` they are also the consent to import the same plugins named by the run.
        trust_plugins: with ``resume``, import every plugin the run's saved config names (CLI ``--trust-plugins``);
            without it (or ``plugins``), a saved plugin that would run code is refused with a ``ConfigError``.
        trust_checkpoint: allow full unpickling of the resumed ``last.pt`` or, for a fresh run, of
            ``model.init_checkpoint`` (sets ``model.trust_checkpoint``); only for files you trust.
    """
    ckpt, run_dir = None, None
    if resume is not None:
        cfg, ckpt, run_dir = resolve_resume(resume, config, overrides, allow_changes, trust_checkpoint=trust_checkpoint)
        if config is None and "plugins" not in (overrides or {}):  # the plugins come from the checkpoint
            require_consent(cfg.plugins, allowed=plugins, trust=trust_plugins, source=f"the saved config of {resume}")
    else:
        cfg = _fresh_config(config, overrides, plugins, trust_checkpoint)
    import_plugins(_merge_plugins(cfg.plugins, plugins))
    out = Path(out_dir or run_dir or cfg.output.dir.format(name=cfg.name))
    if resume is None and (out / "last.pt").exists():
        raise ConfigError(f"{out} already holds a run (last.pt); continue it with --resume {out} "
                          "or choose another output folder (--out)")
    handler = _log_file(out) if int(os.environ.get("RANK", "0")) == 0 else None
    try:
        trainer = Trainer(cfg, out, resume=ckpt, datasets=datasets)
        result = trainer.fit()
        if trainer.dist.is_main:
            finish(trainer, result)
        distributed.barrier()
        return result
    finally:
        if handler is not None:
            logging.getLogger("ferkit").removeHandler(handler)
            handler.close()


def _fresh_config(config: RunConfig | str | os.PathLike | None, overrides: Mapping[str, Any] | None,
                  plugins: Sequence[str], trust_checkpoint: bool) -> RunConfig:
    """The config of a new run: the recipe with ``overrides``, the extra ``plugins`` and ``trust_checkpoint``."""
    if isinstance(config, RunConfig):
        cfg = load_config(base=to_dict(config), overrides=overrides)
    elif config is not None:
        cfg = load_config(config, overrides)
    else:
        raise ValueError("give a config (YAML path or RunConfig) or resume=RUN_DIR")
    extra: dict[str, Any] = {}
    if plugins:  # recorded with absolute file paths, so that a resume from another folder finds the same files
        extra["plugins"] = _merge_plugins(cfg.plugins, [plugin_key(p) for p in plugins])
    if trust_checkpoint:
        extra["model.trust_checkpoint"] = True
    return load_config(base=to_dict(cfg), overrides=extra) if extra else cfg


def _merge_plugins(first: Sequence[str], more: Sequence[str]) -> list[str]:
    """``first`` followed by the entries of ``more`` that name something else (compared by ``plugin_key``)."""
    out, keys = list(first), {plugin_key(n) for n in first}
    for name in more:
        if plugin_key(name) not in keys:
            out.append(name)
            keys.add(plugin_key(name))
    return out


def _log_file(out: Path) -> logging.Handler:
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("ferkit")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def finish(trainer: Trainer, result: TrainResult) -> None:
    """After the last epoch: optional test-split evaluation of the best model, ``summary.json``."""
    cfg, out = trainer.cfg, trainer.out
    files = {k: str(out / f) for k, f in (("last", "last.pt"), ("best", "best.pt"), ("metrics", "metrics.csv"),
                                          ("curves", "curves.png"), ("config", "config.yaml")) if (out / f).exists()}
    test = None
    if cfg.eval.test_split and result.epochs_done:
        test = _test_report(trainer, out / "test")
        files["test_report"] = str(out / "test" / "report.json")
    summary = {"run": cfg.name, "model": cfg.model.name, "dataset": cfg.data.name, "epochs_done": result.epochs_done,
               "epochs": cfg.train.epochs, "stopped_early": result.stopped_early, "best": result.best,
               "last": result.history[-1] if result.history else None, "test": test,
               "paper_targets": dict(cfg.targets), "files": files}
    text = json.dumps(summary, indent=2)
    atomic_write_bytes(out / "summary.json", lambda f: f.write(text.encode()))
    result.files = files


def _test_report(trainer: Trainer, out: Path) -> dict[str, Any]:
    from ferkit.evaluation import evaluate, write_report
    from ferkit.models import create_model
    from ferkit.models.transforms import build_transform
    from ferkit.train.data import build_split

    cfg = trainer.cfg
    weights = trainer.out / ("best.pt" if (trainer.out / "best.pt").exists() else "last.pt")
    model = create_model(cfg.model.name, checkpoint=str(weights), **cfg.model.options)
    ds = trainer.test_set if trainer.test_set is not None else build_split(cfg.data, cfg.eval.test_split, None)
    ds.transform = build_transform(model.data_config, False, dataset=cfg.data.name, **cfg.data.eval_transform)
    report, _ = evaluate(model, ds, batch_size=cfg.eval.batch_size or trainer.micro_batch, device=trainer.dist.device,
                         num_workers=cfg.data.num_workers, precision=trainer.precision)
    report["checkpoint"] = str(weights)
    write_report(report, out)
    log.info("test %s: accuracy %.2f%%, mean class accuracy %.2f%%", cfg.eval.test_split, 100 * report["accuracy"],
             100 * report["mean_class_accuracy"])
    return {k: report[k] for k in ("accuracy", "mean_class_accuracy", "macro_f1", "num_samples")}
