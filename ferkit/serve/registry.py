"""The models a server answers with: each a :class:`ServedModel` (a recognizer, or a factory loaded at start-up), its
micro-batcher and what ``GET /v1/models`` says about it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ferkit.detect.base import Face
from ferkit.infer.frames import error_message
from ferkit.infer.recognizer import Recognizer
from ferkit.serve.batcher import MicroBatcher
from ferkit.serve.metrics import Metrics

log = logging.getLogger(__name__)

RecognizerSource = Recognizer | Callable[[], Recognizer]


@dataclass
class ServedModel:
    """One model of the server.

    Args:
        name: what clients pass as ``?model=`` (default: the recognizer's model name).
        source: a ready :class:`Recognizer`, or a callable returning one (called once, at start-up, off the event
            loop; ``/readyz`` answers 503 until it returns).
        trained: whether the weights are trained (None: ask the recognizer, whose ``untrained`` flag wins);
            untrained models are flagged in the API, the records and the page.
        description: free text shown by ``/v1/models``.
    """

    name: str | None
    source: RecognizerSource
    trained: bool | None = None
    description: str = ""
    recognizer: Recognizer | None = field(default=None, init=False)
    whole_image: Any = field(default=None, init=False)  # Preprocessor for ?detect=false
    batcher: MicroBatcher | None = field(default=None, init=False)
    state: str = field(default="loading", init=False)  # loading | ready | failed | closed
    error: str | None = field(default=None, init=False)
    load_seconds: float | None = field(default=None, init=False)
    detect_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    async def start(self, *, max_batch: int, max_wait: float, metrics: Metrics) -> None:
        """Load the recognizer if needed (in a thread) and start its batcher; failures are kept in ``error``."""
        t = time.perf_counter()
        try:
            rec = self.source if isinstance(self.source, Recognizer) else await asyncio.to_thread(self.source)
            if not isinstance(rec, Recognizer):
                raise TypeError(f"the factory of model {self.name!r} returned {type(rec).__name__}, not a Recognizer")
            self._attach(rec)
            batcher = MicroBatcher(rec.backend.logits, max_batch=max_batch, max_wait=max_wait, name=self.name,
                                   on_batch=lambda n, s: (metrics.batch.observe(n, model=self.name),
                                                          metrics.forward.observe(s, model=self.name)))
            await batcher.start()
            self.batcher = batcher
        except Exception as e:  # noqa: BLE001 - the server stays up and reports the failure
            self.state, self.error = "failed", error_message(e)
            log.error("model %s failed to load: %s", self.name, self.error, exc_info=not isinstance(e, ValueError))
        else:
            self.state, self.load_seconds = "ready", time.perf_counter() - t
            log.info("model %s ready (%s, detector %s) in %.1f s", self.name, rec.model_name, rec.detector_name,
                     self.load_seconds)
        metrics.model_info.set(1.0 if self.ready else 0.0, model=self.name, arch=self.arch,
                               detector=self.detector, weights=self.weights)

    def _attach(self, rec: Recognizer) -> None:
        from ferkit.infer.preprocess import Preprocessor, resolve_crop

        self.recognizer = rec
        self.name = self.name or rec.model_name
        if getattr(rec, "untrained", False):  # create_model marks a classifier that was never trained
            self.trained = False
        elif self.trained is None and hasattr(rec, "untrained"):
            self.trained = True
        self.whole_image = Preprocessor(rec.data_config, resolve_crop("auto", detector_name="none",
                                                                      pretrained_crop=None))

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """The recognizer's faces in ``rgb``, one image at a time (detectors such as YuNet keep per-call state)."""
        with self.detect_lock:
            return self.recognizer.detect(rgb)

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.close()
        self.state = "closed"

    @property
    def arch(self) -> str:
        return self.recognizer.model_name if self.recognizer is not None else ""

    @property
    def detector(self) -> str:
        return self.recognizer.detector_name if self.recognizer is not None else ""

    @property
    def weights(self) -> str:
        return {True: "trained", False: "untrained", None: "unknown"}[self.trained]

    def info(self, *, default: bool = False, max_batch: int | None = None) -> dict[str, Any]:
        """What ``GET /v1/models`` lists for this model."""
        from ferkit.infer.draw import COLOURS

        out: dict[str, Any] = {"name": self.name, "default": default, "state": self.state, "error": self.error,
                               "weights": self.weights, "trained": self.trained, "description": self.description}
        rec = self.recognizer
        if rec is not None:
            size = rec.data_config.get("input_size")
            out.update(arch=rec.model_name, backend=rec.backend.name, device=str(getattr(rec.backend, "device", "cpu")),
                       label_names=list(rec.label_names), num_classes=len(rec.label_names),
                       input_size=int(size[-1] if isinstance(size, Sequence) else size), detector=rec.detector_name,
                       crop=rec.crop.get("preset"), max_batch=max_batch,
                       colours={n: _hex(COLOURS.get(n, (0, 255, 0))) for n in rec.label_names})
        return out


def _hex(rgb: Sequence[int]) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in rgb)


def served_models(models: Any) -> list[ServedModel]:
    """Normalise what :func:`ferkit.serve.create_app` accepts into :class:`ServedModel` s.

    Accepted: a :class:`Recognizer`, a factory (callable returning one), a :class:`ServedModel`, a mapping
    ``name -> any of these``, or a sequence of any of these. The first model is the default.

    Raises:
        ValueError: no model, or two with the same name. TypeError: anything else.
    """
    if isinstance(models, Mapping):
        items = [_one(v, name=str(k)) for k, v in models.items()]
    elif isinstance(models, (list, tuple)):
        items = [_one(v) for v in models]
    else:
        items = [_one(models)]
    if not items:
        raise ValueError("create_app needs at least one model (a Recognizer or a factory returning one)")
    names = [m.name for m in items if m.name]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"two served models have the same name: {', '.join(dupes)}; name them with a mapping "
                         "{name: recognizer} or ServedModel(name=...)")
    return items


def _one(value: Any, name: str | None = None) -> ServedModel:
    if isinstance(value, ServedModel):
        fallback = value.source.model_name if isinstance(value.source, Recognizer) else "default"
        value.name = value.name or name or fallback
        return value
    if isinstance(value, Recognizer):
        return ServedModel(name or value.model_name, value)
    if callable(value):
        return ServedModel(name or "default", value)
    raise TypeError(f"a served model must be a Recognizer, a callable returning one or a ServedModel; got "
                    f"{type(value).__name__}")
