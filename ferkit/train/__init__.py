"""Training engine: typed recipes, SAM, schedules, DDP, exact resume, metrics and plots (``pip install ferkit[train]``).

    from ferkit.train import train, load_config
    result = train("configs/poster_v2_rafdb.yaml", overrides={"data.root": "/data/RAF-DB"})
"""

from ferkit.train.api import resolve_resume, train
from ferkit.train.config import RunConfig, load_config, save_config
from ferkit.train.optim import SAM, build_optimizer
from ferkit.train.schedule import LRSchedule
from ferkit.train.trainer import Trainer, TrainResult

__all__ = ["train", "resolve_resume", "Trainer", "TrainResult", "RunConfig", "load_config", "save_config", "SAM",
           "build_optimizer", "LRSchedule"]
