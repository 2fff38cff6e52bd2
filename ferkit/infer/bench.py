"""Classifier speed and agreement, one table (``ferkit bench``): model, precision, batch, threads, ms/img, faces/s,
top-1 agreement and max probability difference vs the same model in fp32 on the same inputs, peak RSS.

    >>> from ferkit.infer.bench import bench, format_table, system_info
    >>> rows = bench(["poster_v2_open.ferplus", "poster_v2"], precisions=["fp32", "bf16"], batches=[1, 8])
    >>> print(format_table(rows, system_info()))

What is timed: the classifier's forward pass on a batch of already preprocessed faces (``Recognizer.backend.logits``:
the ``for_inference`` copy under the precision's autocast, logits back as float32 on the CPU) — the part a precision
changes. Detection, decoding and cropping are timed end to end by ``benchmarks/inference.py``. Inputs are seeded
random tensors in the model's input size, or ``images=DIR``: real face crops through the model's preprocessing (the
whole image is the face, like ``detector="none"``), repeated to the largest batch.

With ``official_src=PATH`` (a checkout of github.com/Talented-Q/POSTER_V2), the official code is imported from it
(:mod:`ferkit.models.poster_v2.official_code`), given the weights of the benchmarked ferkit ``poster_v2`` model and
timed in the same process with the same threads and inputs; its agreement column compares it with ferkit in fp32.

A precision or model that cannot be built or run (fp16 on the CPU, a precision the backend refuses, missing
weights) gives a row with ``error`` set; the other rows still run. Numbers are medians of ``repeats`` timed calls
after ``warmup`` untimed ones; they are only comparable within one run on an otherwise idle machine.
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ferkit.errors import FerkitError
from ferkit.infer.frames import error_message

log = logging.getLogger(__name__)

#: (row key, table heading), in table order
COLUMNS = (("model", "model"), ("precision", "precision"), ("backend", "backend"), ("batch", "batch"),
           ("threads", "threads"), ("ms_per_image", "ms/img"), ("faces_per_s", "faces/s"),
           ("percent_of_peak", "% fp32 peak"), ("top1_agreement", "top-1 agree %"), ("max_prob_diff", "max |Δp|"),
           ("peak_rss_mb", "peak RSS MB"), ("error", "error"))
#: CPU flags that decide which kernels run (x86 names of /proc/cpuinfo)
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
             "amx_bf16", "amx_int8")
OFFICIAL = "official POSTER_V2"


def system_info() -> dict[str, Any]:
    """CPU model and flags, torch version, ``torch.backends.cpu`` capability, intra-/inter-op threads, peak RSS."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "cpu_flags": [f for f in CPU_FLAGS if f in flags],
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``getrusage``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2 ** 20 if sys.platform == "darwin" else 2 ** 10), 1)


def matmul_gflops(size: int = 1024, repeats: int = 10) -> float:
    """The fp32 matrix-multiply speed of this CPU at the current thread count, GFLOP/s (best of ``repeats``
    ``size`` x ``size`` products): the practical fp32 peak that convolutions and linear layers can reach."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        a @ b
    best = min(_timed(lambda x: x @ b, a, repeats, 0)[0])
    return 2 * size ** 3 / best / 1e9


def count_gflop(fn: Callable[[torch.Tensor], Any], x: torch.Tensor) -> float | None:
    """GFLOP per image of ``fn(x)`` (matrix products, convolutions, attention; ``torch.utils.flop_counter``), None
    when ``fn`` does not run PyTorch operators (an ONNX runtime)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        fn(x)
    total = counter.get_total_flops()
    return total / 1e9 / x.shape[0] if total else None


def bench(models: str | Sequence[str] | None = None, precisions: Sequence[str] = ("fp32",),
          batches: Sequence[int] = (1, 8), threads: int | Sequence[int] | None = None, repeats: int = 5,
          official_src: str | os.PathLike | None = None, *, backends: Sequence[str | None] = (None,),
          images: str | os.PathLike | None = None,
          checkpoint: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None,
          device: str = "cpu", warmup: int = 1, seed: int = 0, trust_checkpoint: bool = False,
          allow_unverified: bool = False, calibrate: str | os.PathLike | None = None,
          on_row: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Time the classifier of each model at each precision, batch size and thread count.

    Args:
        models: pretrained names (``poster_v2_open.ferplus``, the default), registered names (``poster_v2``: seeded
            random weights unless ``checkpoint``), or ``.onnx`` files.
        precisions: as :func:`ferkit.load` accepts them (passed through; a refused one gives an error row; what
            ``auto`` chose is shown next to it).
        backends: runtimes as :func:`ferkit.load` accepts them (``torch``, ``onnx``, ``openvino``, ``auto``); every
            precision is timed with each (a combination a runtime refuses gives an error row). None: what
            :func:`ferkit.load` picks by default (PyTorch; onnxruntime for int8 and ``.onnx`` files).
        batches: faces per forward pass. threads: ``torch.set_num_threads`` values (default: the current one).
        repeats: timed calls per row (median reported), after ``warmup`` untimed ones.
        official_src: a POSTER_V2 checkout; adds ``official POSTER_V2`` rows next to the first ``poster_v2`` model
            (``poster_v2`` is added when no model of that architecture is listed).
        images: folder of face crops used as inputs instead of random tensors.
        checkpoint: weights for the registered (untagged) model names. overrides: model options for
            ``create_model``; a key ``MODEL:KEY`` applies to that model only (``mpa_fer_vit_b16:clip_weights``).
        calibrate: face images for :func:`ferkit.load`'s int8 quantization (``precision="int8"``).
        on_row: called with each row as soon as it is measured (e.g. to print it).

    Returns:
        One dict per row with the keys of :data:`COLUMNS` (``error`` None when it worked), plus ``median_ms`` (batch
        latency), ``min_ms``, ``times_ms``, ``precision_used`` / ``backend_used`` (what ran, e.g. for ``auto``),
        ``gflop_per_image`` (counted on the PyTorch model), ``peak_gflops`` (:func:`matmul_gflops` at that thread
        count; ``percent_of_peak`` = GFLOP/img x faces/s / peak) and ``device``.
    """
    names = [models] if isinstance(models, str) else list(models or [_default_model()])
    thread_list = [int(t) for t in ([threads] if isinstance(threads, int) else threads or [torch.get_num_threads()])]
    batches = sorted({int(b) for b in batches})
    if not names or not batches or min(batches) < 1 or min(thread_list) < 1 or int(repeats) < 1:
        raise ValueError("bench needs at least one model, batch sizes >= 1, threads >= 1 and repeats >= 1")
    if official_src is not None:
        from ferkit.models.poster_v2.official_code import official_file

        official_file(official_src)  # a wrong path fails now, not after the other models
        if not any(_arch(n) == "poster_v2" for n in names):
            names.insert(0, "poster_v2")
    run = _Run(batches, int(repeats), int(warmup), device, seed, images, on_row, calibrate, list(backends))
    official_done = False
    saved_threads = torch.get_num_threads()
    try:
        for name in names:
            with_official = official_src is not None and not official_done and _arch(name) == "poster_v2"
            run.model(name, precisions, thread_list, official_src if with_official else None,
                      _model_options(name, checkpoint, overrides, trust_checkpoint, allow_unverified))
            official_done = official_done or with_official
    finally:
        torch.set_num_threads(saved_threads)
    return run.rows


class _Run:
    """The state of one :func:`bench` call: settings, the rows so far."""

    def __init__(self, batches: list[int], repeats: int, warmup: int, device: str, seed: int, images: Any,
                 on_row: Callable[[dict[str, Any]], None] | None, calibrate: Any = None,
                 backends: Sequence[str | None] = (None,)):
        self.batches, self.repeats, self.warmup, self.device, self.seed = batches, repeats, warmup, device, seed
        self.calibrate, self.backends = calibrate, list(backends) or [None]
        self.peak: dict[int, float] = {}  # threads -> fp32 matmul GFLOP/s
        self._official_gflop: dict[Any, float | None] = {}
        self.images = None if images is None else _image_files(images)
        self.on_row = on_row
        self.rows: list[dict[str, Any]] = []

    def add(self, **row: Any) -> None:
        out = {key: row.get(key) for key, _ in COLUMNS} | {k: v for k, v in row.items()}
        out["peak_rss_mb"] = peak_rss_mb()
        out.setdefault("device", self.device)
        self.rows.append(out)
        if self.on_row is not None:
            self.on_row(out)

    def model(self, name: str, precisions: Sequence[str], thread_list: list[int], official_src: Any,
              options: dict[str, Any]) -> None:
        try:
            net = _build(name, options)
        except Exception as e:  # noqa: BLE001 - one bad model must not stop the others
            log.debug("model %s failed", name, exc_info=True)
            self.add(model=name, threads=thread_list[0], error=error_message(e))
            return
        official = None
        for threads in thread_list:
            torch.set_num_threads(threads)
            if self.device == "cpu" and threads not in self.peak:
                self.peak[threads] = matmul_gflops()
            try:  # the fp32 reference of the agreement columns: the PyTorch model (an ONNX file: its own runtime)
                ref_rec = _recognizer(net, "fp32", self.device, None, None)
                pool = self._inputs(ref_rec)
                reference = {b: _probs(ref_rec.backend.logits(pool[:b])) for b in self.batches}
                gflop = count_gflop(ref_rec.backend.logits, pool[:1])
            except Exception as e:  # noqa: BLE001
                log.debug("model %s failed in fp32", name, exc_info=True)
                self.add(model=name, precision="fp32", threads=threads, error=error_message(e))
                return
            for precision in precisions:
                for backend in self.backends:
                    self._precision_rows(net, name, precision, backend, threads, ref_rec, pool, reference, gflop)
            if official_src is not None:
                if official is None:  # built once; a failure is one error row
                    official = self._official(official_src, net, threads) or False
                if official is not False:
                    for precision in precisions:
                        self._official_rows(official, precision, threads, pool, reference)
            del ref_rec
            gc.collect()

    def _precision_rows(self, net: Any, name: str, precision: str, backend: str | None, threads: int, ref_rec: Any,
                        pool: torch.Tensor, reference: dict[int, torch.Tensor], gflop: float | None) -> None:
        try:
            same = precision == "fp32" and backend in (None, "torch") and not _is_onnx(name)
            rec = ref_rec if same else _recognizer(net, precision, self.device, self.calibrate, backend)
        except Exception as e:  # noqa: BLE001 - e.g. fp16 on the CPU, a precision the backend refuses
            self.add(model=name, precision=precision, backend=backend, threads=threads, error=error_message(e))
            return
        used = str(getattr(rec.backend, "precision", None) or precision)
        self._time_rows(name, precision, threads, rec.backend.logits, pool, reference, used, backend=backend,
                        backend_used=rec.backend.name, gflop=gflop)
        del rec
        gc.collect()

    def _official(self, src: Any, net: Any, threads: int) -> Any:
        try:
            from ferkit.models.poster_v2.official_code import load_official_model

            if not isinstance(net, torch.nn.Module):
                raise ValueError("the official code runs ferkit poster_v2 weights; this model is an ONNX file")
            from ferkit.device import resolve_device

            if resolve_device(self.device).type != "cpu":
                raise ValueError("the official code is timed on the CPU only (device='cpu')")
            return load_official_model(src, net.state_dict())
        except Exception as e:  # noqa: BLE001
            log.debug("official code from %s failed", src, exc_info=True)
            self.add(model=OFFICIAL, precision="fp32", threads=threads, error=error_message(e))
            return None

    def _official_rows(self, model: Any, precision: str, threads: int, pool: torch.Tensor,
                       reference: dict[int, torch.Tensor]) -> None:
        from ferkit.device import autocast
        from ferkit.models.poster_v2.official_code import official_logits

        try:
            autocast("cpu", precision)  # the precision policy of ferkit's rows: fp16 on the CPU, int8 are refused
        except Exception as e:  # noqa: BLE001
            self.add(model=OFFICIAL, precision=precision, threads=threads, error=error_message(e))
            return

        def logits(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(), autocast("cpu", precision):
                return official_logits(model, x).float()

        if model not in self._official_gflop:
            self._official_gflop[model] = count_gflop(logits, pool[:1])
        self._time_rows(OFFICIAL, precision, threads, logits, pool, reference, backend="torch",
                        gflop=self._official_gflop[model])

    def _time_rows(self, name: str, precision: str, threads: int, fn: Callable[[torch.Tensor], torch.Tensor],
                   pool: torch.Tensor, reference: dict[int, torch.Tensor], used: str | None = None, *,
                   backend: str | None = "torch", backend_used: str | None = None,
                   gflop: float | None = None) -> None:
        for b in self.batches:
            x = pool[:b]
            try:
                times, out = _timed(fn, x, self.repeats, self.warmup)
            except Exception as e:  # noqa: BLE001 - e.g. an operator a quantised model does not support
                log.debug("%s %s batch %d failed", name, precision, b, exc_info=True)
                self.add(model=name, precision=precision, backend=backend, batch=b, threads=threads,
                         error=error_message(e))
                continue
            median = statistics.median(times)
            probs = _probs(out)
            ref = reference[b]
            same = (probs.argmax(-1) == ref.argmax(-1)).double().mean().item()
            peak = self.peak.get(threads)
            self.add(model=name, precision=precision, backend=backend, batch=b, threads=threads,
                     ms_per_image=round(1e3 * median / b, 3), faces_per_s=round(b / median, 2),
                     percent_of_peak=round(100 * gflop * b / median / peak, 1) if gflop and peak else None,
                     gflop_per_image=None if gflop is None else float(f"{gflop:.4g}"),
                     peak_gflops=peak and round(peak, 1),
                     backend_used=backend_used or backend,
                     top1_agreement=round(100.0 * same, 2), max_prob_diff=float((probs - ref).abs().max()),
                     precision_used=used or precision, median_ms=round(1e3 * median, 3),
                     min_ms=round(1e3 * min(times), 3), times_ms=[round(1e3 * t, 3) for t in times])

    def _inputs(self, rec: Any) -> torch.Tensor:
        """max(batches) inputs in the model's input size: seeded random tensors, or the images cycled."""
        n = max(self.batches)
        if self.images is None:
            size = rec.preprocessor.size
            g = torch.Generator().manual_seed(self.seed)
            return torch.randn(n, 3, size, size, generator=g)
        from ferkit.infer.inputs import InputItem, read_rgb

        faces = [rec.preprocessor.to_tensor(read_rgb(InputItem(str(p), p))) for p in self.images[:n]]
        return torch.stack([faces[i % len(faces)] for i in range(n)])


def _timed(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, repeats: int,
           warmup: int) -> tuple[list[float], torch.Tensor]:
    out = None
    for _ in range(warmup):
        out = fn(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn(x)
        times.append(time.perf_counter() - t)
    return times, out


def _probs(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.double(), dim=-1)


def _default_model() -> str:
    from ferkit.models.pretrained import DEFAULT_MODEL

    return DEFAULT_MODEL


def _is_onnx(name: str) -> bool:
    return str(name).lower().endswith(".onnx")


def _arch(name: str) -> str | None:
    """Registered architecture of a model name (``poster_v2.rafdb`` -> ``poster_v2``); None for ONNX / unknown."""
    if _is_onnx(name):
        return None
    if "." in name:
        from ferkit.models.pretrained import get_pretrained_cfg

        try:
            return get_pretrained_cfg(name).arch
        except ValueError:
            return None
    return name


def _model_options(name: str, checkpoint: Any, overrides: Mapping[str, Any] | None, trust: bool,
                   allow_unverified: bool) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        scope, _, field = key.rpartition(":")
        if not scope:
            opts[key] = value
        elif scope == name:
            opts[field] = value
    if _is_onnx(name):
        return {}
    tagged = "." in name
    return {"checkpoint": None if tagged else checkpoint, "trust_checkpoint": trust,
            "allow_unverified": allow_unverified, **opts}


def _build(name: str, options: dict[str, Any]) -> Any:
    """The ferkit model (built once per model: every precision gets its own ``for_inference`` copy), or the path of an
    ONNX file. Untrained models get the seeded weights :func:`ferkit.load` gives them."""
    if _is_onnx(name):
        if not Path(name).is_file():
            raise FileNotFoundError(f"exported model not found: {name}")
        return name
    from ferkit.models import create_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model(name, **options).eval()


def _recognizer(net: Any, precision: str, device: str, calibrate: Any, backend: str | None) -> Any:
    from ferkit.infer.api import load

    extra = {"calibrate": calibrate} if calibrate is not None else {}
    return load(net, detector="none", device=device, precision=precision, backend=backend, **extra)


def _image_files(folder: str | os.PathLike) -> list[Path]:
    from ferkit.infer.inputs import list_images

    if not Path(folder).is_dir():
        raise FileNotFoundError(f"images folder not found: {folder}")
    files = list_images(folder)
    if not files:
        raise FerkitError(f"no image files in {folder}")
    return files


# ---- output --------------------------------------------------------------------------------------------------------
def format_header(info: Mapping[str, Any]) -> str:
    """The lines above the table: CPU and its flags, torch and its threads."""
    flags = " ".join(info.get("cpu_flags") or []) or "none of " + "/".join(CPU_FLAGS[:4])
    return (f"CPU: {info.get('cpu')} ({info.get('cores')} cores), flags: {flags}, torch kernels: "
            f"{info.get('cpu_capability')}\ntorch {info.get('torch')}, intra-op threads {info.get('threads')}, "
            f"inter-op threads {info.get('interop_threads')}")


def format_peak(rows: Iterable[Mapping[str, Any]]) -> str:
    """The line under the table that gives the 100 % of ``% fp32 peak`` per thread count ('' when not measured)."""
    peak = {int(r["threads"]): r["peak_gflops"] for r in rows if r.get("peak_gflops") and r.get("threads")}
    if not peak:
        return ""
    return ("fp32 matmul peak (1024x1024, best of 10; the 100 % of '% fp32 peak' = GFLOP per image counted on the "
            "PyTorch model x faces/s): " + ", ".join(f"{v:.1f} GFLOP/s at {k} thread{'s' if k > 1 else ''}"
                                                     for k, v in sorted(peak.items())))


def format_row(row: Mapping[str, Any]) -> str:
    """One markdown table row."""
    cells = []
    for key, _ in COLUMNS:
        v = row.get(key)
        if v is None and key != "backend":
            cells.append("")
        elif key == "max_prob_diff":
            cells.append(f"{v:.1e}" if v else "0.0")
        elif key in ("ms_per_image", "faces_per_s"):
            cells.append(f"{v:.2f}" if v < 100 else f"{v:.1f}")
        elif key == "top1_agreement":
            cells.append(f"{v:.1f}")
        elif key == "precision" and row.get("precision_used") not in (None, v):
            cells.append(f"{v} ({row['precision_used']})")
        elif key == "backend" and v is None:
            cells.append(row.get("backend_used") or "")
        elif key == "backend" and row.get("backend_used") not in (None, v):
            cells.append(f"{v} ({row['backend_used']})")
        else:
            cells.append(str(v))
    return "| " + " | ".join(cells) + " |"


def table_head() -> str:
    """The markdown heading and separator lines."""
    return "| " + " | ".join(h for _, h in COLUMNS) + " |\n|" + "|".join("---" for _ in COLUMNS) + "|"


def format_table(rows: Iterable[Mapping[str, Any]], info: Mapping[str, Any] | None = None) -> str:
    """The whole table (markdown), with :func:`format_header` above it and the peak RSS below when ``info`` is given."""
    rows = list(rows)
    lines = ([format_header(info), ""] if info else []) + [table_head()] + [format_row(r) for r in rows]
    if format_peak(rows):
        lines += ["", format_peak(rows)]
    if info is not None:
        lines += ["", f"peak RSS: {max([peak_rss_mb()] + [r.get('peak_rss_mb') or 0 for r in rows]):.0f} MiB"]
    return "\n".join(lines)
