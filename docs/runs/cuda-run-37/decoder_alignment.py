"""Run 37: does the vocabulary's odd width (30522, not a multiple of 8) slow the decoder's three
GEMMs? PyTorch's bf16 matmuls (cuBLAS) at 5120 predictions x 768 hidden, vocabulary 30522 against
30528, timed with CUDA events (median of 20 after 5 warm-up calls)."""
import torch

def timed(f):
    for _ in range(5):
        f()
    times = []
    for _ in range(20):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(); f(); end.record(); torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2] * 1000

rows, hidden = 5120, 768
for vocab in (30522, 30528):
    x = torch.randn(rows, hidden, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(vocab, hidden, device="cuda", dtype=torch.bfloat16)
    d = torch.randn(rows, vocab, device="cuda", dtype=torch.bfloat16)
    fwd = timed(lambda: x @ w.t())
    dx = timed(lambda: d @ w)
    dw = timed(lambda: d.t() @ x)
    print(f"vocab {vocab}: logits {fwd:.0f} us, input gradient {dx:.0f} us, weight gradient {dw:.0f} us, sum {fwd + dx + dw:.0f} us")
