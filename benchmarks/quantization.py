#!/usr/bin/env python
"""Precision and int8 quantization of the default model: speed and agreement with fp32, on real FER+ faces.

    python benchmarks/quantization.py --ferplus ../shared/data/ferplus --threads 2 --valid 1000 --calibration 256

Rows: PyTorch fp32 (the ``for_inference`` copy, the reference), bf16 autocast, onnxruntime fp32, onnxruntime int8
static quantization (``ferkit.export.quantize.quantize_onnx``) in several configurations, and PyTorch's PT2E x86
quantizer (torchao's ``X86InductorQuantizer`` + ``torch.compile``, with ``--pt2e``). Columns: ms/image at batch 1 and
8 (median of ``--repeats`` rounds that time every configuration in turn, after one warm-up call each), top-1
agreement with PyTorch fp32, max and 99th-percentile |probability difference| (softmax, per face the largest over
classes), and the 8-class accuracy on the FER+ argmax labels, on ``--valid`` FER+ *Valid* faces (file order).
Calibration uses ``--calibration`` FER+ *Train* faces (seeded draw): the two sets never overlap. Every face goes
through the model's own evaluation preprocessing (the 48x48 PNG is the face).

Prints a markdown table with the CPU flags; timings are comparable only within one run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _timing import call_times, cpu_flags  # noqa: E402

#: onnxruntime int8 configurations tried: name -> changes to ferkit's generic INT8_RECIPE (QDQ, per-channel s8 weights
#: with reduce_range, u8 activations, MinMax calibration, every node quantized)
SENSITIVE = r"(image_net/conv1/|landmark_net/stem/|/se/|/head/|attn/MatMul)"
LATE = r"^/(image_net/levels\.[23]/|landmark_net/(stage|landmark_head)|fusion\.[12]/|tokenize|landmark_proj)"
ORT_CONFIGS = {
    "all nodes, u8/s8 (onnxruntime defaults + per-channel)": {"reduce_range": False},
    "all nodes, u8/s8 reduce_range": {},
    "all nodes, s8/s8": {"reduce_range": False, "activations": "int8"},
    "all nodes, per-tensor weights": {"per_channel": False},
    "all nodes, QOperator": {"format": "QOperator"},
    "stems, SE, head, attention products fp32": {"keep_fp32": SENSITIVE},
    "stems, SE, head, attention products fp32, QOperator": {"keep_fp32": SENSITIVE, "format": "QOperator"},
    "image levels 2-3 + landmark stream + fusion 1-2 only": {"quantize_only": LATE, "keep_fp32": r"attn/MatMul"},
    "ferkit recipe (poster_v2_open)": "model",
}


def load_faces(root: Path, split: str, count: int, data_config: dict, seed: int | None) -> np.ndarray:
    """``count`` faces of a FER+ split through the model's evaluation transform: the first ``count`` in file order,
    or a seeded random draw."""
    from ferkit.data import build_dataset
    from ferkit.models.transforms import build_eval_transform

    ds = build_dataset("ferplus", root, split)
    ds.transform = build_eval_transform(dict(data_config))
    order = np.arange(len(ds)) if seed is None else np.random.default_rng(seed).permutation(len(ds))
    idx = order[:min(count, len(ds))]
    targets = np.array([ds.targets[i] for i in idx]) if hasattr(ds, "targets") else None
    return torch.stack([ds[int(i)][0] for i in idx]).numpy(), targets


def softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64) - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def agreement(logits: np.ndarray, ref: np.ndarray, targets: np.ndarray | None) -> dict:
    p, q = softmax(logits), softmax(ref)
    diff = np.abs(p - q).max(1)
    out = {"agree": float((p.argmax(1) == q.argmax(1)).mean()), "max_diff": float(diff.max()),
           "p99_diff": float(np.quantile(diff, 0.99))}
    if targets is not None:
        out["accuracy"] = float((p.argmax(1) == targets).mean())
    return out


def run_batches(fn, x: np.ndarray, batch: int = 8) -> np.ndarray:
    return np.concatenate([fn(x[i:i + batch]) for i in range(0, len(x), batch)])


def interleaved_speed(rows: list[dict], x: np.ndarray, repeats: int) -> None:
    """ms/image at batch 1 and 8 for every row with a ``fn``: one warm-up call each, then ``repeats`` rounds that
    time every row once per batch size in turn (so a change of machine load hits all rows alike); medians."""
    timed = [r for r in rows if "fn" in r]
    times: dict[tuple[int, int], list[float]] = {(i, b): [] for i in range(len(timed)) for b in (1, 8)}
    for r in timed:
        r["fn"](x[:1])
        r["fn"](x[:8])
    for _ in range(repeats):
        for i, r in enumerate(timed):
            for b in (1, 8):
                xb = x[:b]
                times[(i, b)] += call_times(lambda r=r, xb=xb: r["fn"](xb), 1, warmup=0)
    for i, r in enumerate(timed):
        for b in (1, 8):
            r[f"ms_b{b}"] = 1000 * statistics.median(times[(i, b)]) / b


def torch_fn(net, autocast_dtype=None):
    def fn(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=autocast_dtype, enabled=autocast_dtype is not None):
            return net(torch.from_numpy(x)).float().numpy()

    return fn


def ort_fn(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def _uncached_position_bias(self):
    """POSTER++'s relative position bias without its eager-mode cache (which reads ``data_ptr()``, something
    ``torch.export`` cannot trace)."""
    table = self.relative_position_bias_table
    if table is None:
        return None
    n = self.window**2
    return table[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1).contiguous()


def pt2e_fn(model, calib: np.ndarray):
    """torchao's PT2E flow with the x86 Inductor quantizer, compiled with Inductor; raises when unavailable."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    from ferkit.models.poster_v2.fusion import WindowCrossAttention

    WindowCrossAttention.position_bias = _uncached_position_bias

    example = torch.from_numpy(calib[:8])
    batch = torch.export.Dim("batch", min=1, max=64)
    gm = torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch},)).module()
    quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(gm, quantizer)
    with torch.no_grad():
        for i in range(0, len(calib), 8):
            prepared(torch.from_numpy(calib[i:i + 8]))
    converted = torch.compile(convert_pt2e(prepared))
    fn = torch_fn(converted)
    fn(calib[:8])  # compile for both batch sizes before timing
    fn(calib[:1])
    return fn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ferplus", default=str(REPO.parent / "shared" / "data" / "ferplus"))
    ap.add_argument("--model", default="poster_v2_open.ferplus")
    ap.add_argument("--valid", type=int, default=1000, help="FER+ Valid faces for agreement (file order)")
    ap.add_argument("--calibration", type=int, default=256, help="FER+ Train faces for calibration (seeded draw)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10, help="interleaved timing rounds")
    ap.add_argument("--configs", nargs="*", default=None, help="onnxruntime int8 configurations (default: all)")
    ap.add_argument("--pt2e", action="store_true",
                    help="also torchao's PT2E x86 flow (needs torchao; quantize + compile take 4-12 min on 2 cores)")
    ap.add_argument("--skip-bf16", action="store_true")
    args = ap.parse_args()

    import ferkit
    from ferkit.export.onnx import export_onnx
    from ferkit.export.quantize import INT8_RECIPE, int8_recipe, quantize_onnx
    from ferkit.nn.optimize import for_inference

    torch.set_num_threads(args.threads)
    model = ferkit.create_model(args.model).eval()
    root = Path(args.ferplus)
    t0 = time.perf_counter()
    valid, targets = load_faces(root, "val", args.valid, model.data_config, seed=None)
    calib, _ = load_faces(root, "train", args.calibration, model.data_config, seed=0)
    print(f"faces loaded in {time.perf_counter() - t0:.0f} s: {len(valid)} Valid, {len(calib)} Train", file=sys.stderr)

    rows = []

    def add(name: str, fn, note: str = "") -> None:
        t = time.perf_counter()
        logits = run_batches(fn, valid)
        rows.append({"name": name, **agreement(logits, ref, targets), "fn": fn, "note": note})
        shown = {k: v for k, v in rows[-1].items() if k != "fn"}
        print(f"{name}: {shown} ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)

    fast = for_inference(model)
    ref = run_batches(torch_fn(fast), valid)
    add("PyTorch fp32 (`for_inference`)", torch_fn(fast), "reference")
    if not args.skip_bf16:
        add("PyTorch bf16 autocast", torch_fn(fast, torch.bfloat16))
    tmp = Path(tempfile.mkdtemp(prefix="ferkit-quant-"))
    fp32_path = tmp / "fp32.onnx"
    export_onnx(model, fp32_path)
    add("onnxruntime fp32", ort_fn(fp32_path, args.threads))
    for name, change in ORT_CONFIGS.items():
        if args.configs and name not in args.configs:
            continue
        recipe = int8_recipe(model.model_name) if change == "model" else {**INT8_RECIPE, **change}
        path = tmp / f"int8_{len(rows)}.onnx"
        t = time.perf_counter()
        used = quantize_onnx(fp32_path, path, [calib[i:i + 8] for i in range(0, len(calib), 8)], recipe=recipe)
        note = (f"quantized in {time.perf_counter() - t:.0f} s; {used['nodes_kept_fp32']} nodes kept fp32"
                + ("" if used["nodes_quantized"] is None else f", {used['nodes_quantized']} quantized"))
        add(f"onnxruntime int8: {name}", ort_fn(path, args.threads), note)
    if not args.pt2e:
        rows.append({"name": "PT2E X86InductorQuantizer (torchao)", "note": "not run (--pt2e)"})
    else:
        try:
            t = time.perf_counter()
            fn = pt2e_fn(model, calib)
            add("PT2E X86InductorQuantizer + torch.compile", fn,
                f"quantized + compiled in {time.perf_counter() - t:.0f} s")
        except Exception as e:  # noqa: BLE001 - the reason goes in the table
            rows.append({"name": "PT2E X86InductorQuantizer (torchao)",
                         "note": f"skipped: {type(e).__name__}: {str(e)[:120]}"})

    print(f"timing {sum('fn' in r for r in rows)} configurations, {args.repeats} interleaved rounds",
          file=sys.stderr, flush=True)
    interleaved_speed(rows, valid, args.repeats)
    print(f"\nCPU: {cpu_flags()}; torch {torch.__version__}, {args.threads} threads; {len(valid)} FER+ Valid faces "
          f"(agreement), {len(calib)} FER+ Train faces (calibration)\n")
    print("| configuration | ms/img b1 | ms/img b8 | top-1 agree % | max abs dp | p99 abs dp | accuracy % (argmax "
          "labels) | note |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        if "agree" not in r:
            print(f"| {r['name']} | | | | | | | {r['note']} |")
            continue
        print(f"| {r['name']} | {r['ms_b1']:.1f} | {r['ms_b8']:.1f} | {100 * r['agree']:.2f} | {r['max_diff']:.4f} | "
              f"{r['p99_diff']:.4f} | {100 * r.get('accuracy', float('nan')):.2f} | {r['note']} |")


if __name__ == "__main__":
    main()
