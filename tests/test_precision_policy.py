"""One precision policy (``ferkit.device``) from every entry point: training, evaluation and inference refuse fp16 on
the CPU with the same error, naming the alternatives; ``auto`` and aliases resolve the same way everywhere."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ferkit.device import CPU_FP16_MESSAGE, autocast, resolve_precision
from ferkit.errors import ConfigError

CPU = torch.device("cpu")


class _Tiny(nn.Module):
    label_names = ("anger", "happiness")
    data_config = {"input_size": 4, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x.flatten(2).mean(2))


def _training(precision):
    from ferkit.train import Trainer, load_config

    cfg = load_config(overrides={"train.device": "cpu", "train.precision": precision})
    Trainer(cfg, "unused-out-dir", datasets=(None, None))  # precision is checked before data or model are touched


def _training_step(precision):
    from ferkit.train.step import StepRunner, TrainForward

    model = _Tiny()
    StepRunner(TrainForward(model), torch.optim.SGD(model.parameters(), lr=0.1), device=CPU, precision=precision)


def _evaluation(precision):
    from ferkit.evaluation import evaluate

    evaluate(_Tiny(), dataset=None, device="cpu", precision=precision)  # checked before the data set is read


def _evaluation_predict(precision):
    from ferkit.evaluation import label_map, predict

    loader = [(torch.zeros(2, 3, 4, 4), torch.tensor([0, 1]))]
    predict(_Tiny(), loader, CPU, label_map(_Tiny.label_names, _Tiny.label_names), precision=precision)


def _inference(precision):
    from ferkit.infer.backends import TorchBackend

    TorchBackend(_Tiny(), device="cpu", precision=precision, optimize=False)


# the run config's ``train.precision`` takes only the canonical names; the Python entry points also take aliases
CASES = [(_training, "fp16")] + [(entry, spelling)
                                 for entry in (_training_step, _evaluation, _evaluation_predict, _inference)
                                 for spelling in ("fp16", "float16", "half")]


@pytest.mark.parametrize("entry,spelling", CASES, ids=[f"{e.__name__.strip('_')}-{s}" for e, s in CASES])
def test_fp16_on_cpu_is_refused_the_same_way_everywhere(entry, spelling):
    with pytest.raises(ConfigError) as info:
        entry(spelling)
    assert str(info.value) == CPU_FP16_MESSAGE
    assert "'bf16'" in CPU_FP16_MESSAGE and "'fp32'" in CPU_FP16_MESSAGE


def test_the_core_helpers_apply_the_same_rule():
    with pytest.raises(ConfigError, match="needs a GPU"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match="needs a GPU"):
        autocast(CPU, "fp16")
    with pytest.raises(ConfigError, match="needs a GPU"):
        autocast("cpu", torch.float16)
    assert resolve_precision("fp16") == "fp16"  # no device: no device check
    assert resolve_precision("fp16", CPU, allow_cpu_fp16=True) == "fp16"  # the explicit opt-in (loss-scaling tests)
    with autocast(CPU, "fp16", allow_cpu_fp16=True):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.float16


@pytest.mark.parametrize("precision,want", [("auto", "fp32"), ("bf16", "bf16"), ("bfloat16", "bf16"),
                                            ("FP32", "fp32"), (None, "fp32")])
def test_cpu_precisions_resolve_alike(precision, want):
    assert resolve_precision(precision, CPU) == want
    with autocast(CPU, precision):
        assert torch.is_autocast_enabled("cpu") == (want == "bf16")


def test_training_and_evaluation_record_the_resolved_name():
    from ferkit.train.step import StepRunner, TrainForward

    model = _Tiny()
    runner = StepRunner(TrainForward(model), torch.optim.SGD(model.parameters(), lr=0.1), device=CPU,
                        precision="bfloat16")
    assert runner.precision == "bf16" and not runner.scaler.is_enabled()


def test_autocast_has_one_home():
    import ferkit.evaluation.runner as runner
    import ferkit.train.trainer as trainer

    assert not hasattr(runner, "autocast") or runner.autocast is autocast
    assert not hasattr(trainer, "resolve_precision") or trainer.resolve_precision is resolve_precision
