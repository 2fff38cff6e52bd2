"""Can cheaper 3x3 convolutions make fp32 POSTER++ much faster on an AVX2 CPU? Winograd vs direct convolution.

    python benchmarks/winograd.py [--threads 2] [--repeats 5]

For the 3x3 stride-1 convolutions of POSTER++'s IR-50 (112 px x 64 ch up to 14 px x 256 ch, batch 1 and 8) it times
PyTorch's direct convolution (oneDNN), PyTorch's NNPACK convolution (``torch._nnpack_spatial_convolution``, which picks
Winograd where it pays) and a Winograd F(2,3) / F(4,3) convolution written here with matrix products (input tiles
transformed by one matrix product, 16 or 36 batched GEMMs, the output transform by another), and prints each one's
relative error against a float64 convolution. The question it answers (docs/performance.md, "What limits the speed"):
how much of the fp32 multiply-add count Winograd's 2.25x / 4x fewer products turn into time on this CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import call_times, cpu_flags  # noqa: E402

#: Lavin & Gray's transforms (interpolation points 0, +-1, +-2 for F(4,3); 0, +-1 for F(2,3)): B^T, G, A^T
_F43 = ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0],
         [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
         [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]])
_F23 = ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]])


class Winograd:
    """A 3x3, stride-1, padding-1 convolution as Winograd F(m, 3), m = 2 or 4; weights transformed once (float64)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, m: int):
        bt, g, at = (torch.tensor(t, dtype=torch.float64) for t in (_F43 if m == 4 else _F23))
        self.m, self.a = m, m + 2
        u = torch.einsum("ij,kcjl,ml->ikcm", g, weight.double(), g)  # (a, K, C, a)
        self.u = u.permute(0, 3, 2, 1).reshape(self.a ** 2, weight.shape[1], weight.shape[0]).float().contiguous()
        self.kb, self.ka = torch.kron(bt, bt).float(), torch.kron(at, at).float()  # (a², a²), (m², a²)
        self.bias = bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        m, a = self.m, self.a
        th, tw = -(-h // m), -(-w // m)
        tiles = F.pad(x, (1, 1 + tw * m - w, 1, 1 + th * m - h)).unfold(2, a, m).unfold(3, a, m)  # N C th tw a a
        v = (self.kb @ tiles.permute(4, 5, 0, 2, 3, 1).reshape(a * a, -1)).view(a * a, n * th * tw, c)
        prod = torch.bmm(v, self.u)  # (a², tiles, K)
        k = prod.shape[-1]
        y = (self.ka @ prod.view(a * a, -1)).view(m, m, n, th, tw, k)
        y = y.permute(2, 5, 3, 0, 4, 1).reshape(n, k, th * m, tw * m)[:, :, :h, :w]
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


#: (in channels, out channels, size) of IR-50's 3x3 stride-1 convolutions at 112 px input, and how many there are
LAYERS = ((64, 64, 112, 1), (64, 64, 56, 4), (64, 128, 56, 1), (128, 128, 28, 6), (128, 256, 28, 1),
          (256, 256, 14, 26))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {cpu_flags()}, NNPACK {torch._nnpack_available()}\n")
    print("| batch | C -> K @ px | in IR-50 | direct ms | NNPACK ms | F(2,3) ms | F(4,3) ms "
          "| rel. error direct / NNPACK / F(2,3) / F(4,3) |")
    print("|---|---|---|---|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for batch in (1, 8):
        for cin, cout, size, count in LAYERS:
            x = torch.randn(batch, cin, size, size, generator=g)
            w = torch.randn(cout, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
            b = torch.randn(cout, generator=g) * 0.1
            impls = {"direct": lambda x, w=w, b=b: F.conv2d(x, w, b, padding=1),
                     "nnpack": lambda x, w=w, b=b: torch._nnpack_spatial_convolution(x, w, b, [1, 1]),
                     "f23": Winograd(w, b, 2), "f43": Winograd(w, b, 4)}
            with torch.inference_mode():
                want = F.conv2d(x.double(), w.double(), b.double(), padding=1)
                ms, err = [], []
                for fn in impls.values():
                    try:
                        sec = statistics.median(call_times(lambda fn=fn, x=x: fn(x), args.repeats, 2))
                        ms.append(f"{1e3 * sec:.2f}")
                        err.append(f"{((fn(x).double() - want).abs().max() / want.abs().max()).item():.0e}")
                    except RuntimeError:  # NNPACK missing from this build
                        ms.append("-")
                        err.append("-")
            print(f"| {batch} | {cin} -> {cout} @ {size} | {count} | {' | '.join(ms)} | {' / '.join(err)} |",
                  flush=True)


if __name__ == "__main__":
    main()
