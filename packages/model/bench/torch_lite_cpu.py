#!/usr/bin/env python3
"""CPU time of one PyTorch thread's training step (forward, backward, Adam) of model-lite's network, taken from
../shared/anchors/torch_lite_recipe.py (its `lite`), or with --net seed of the seed's network (SeedNet of
../shared/anchors/torch_seed_recipe.py), beside packages/model/bench/step-cpu.mjs. Not a test.

  /usr/bin/python3 packages/model/bench/torch_lite_cpu.py --anchors ../shared/anchors [--width 80] [--height 60]
      [--batch 32] [--steps 12] [--warmup 3] [--classes 5] [--threads 1] [--net lite|seed]

Prints one JSON line: CPU ms per step (min and median), wall ms (min).
"""
import argparse, json, os, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--anchors", default=os.path.join(os.path.dirname(__file__), "../../../../shared/anchors"))
ap.add_argument("--width", type=int, default=80)
ap.add_argument("--height", type=int, default=60)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--steps", type=int, default=12)
ap.add_argument("--warmup", type=int, default=3)
ap.add_argument("--classes", type=int, default=5)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--net", choices=["lite", "seed"], default="lite")
a = ap.parse_args()
sys.path.insert(0, os.path.abspath(a.anchors))
import torch, torch.nn.functional as F  # noqa: E402
from torch_lite_recipe import lite  # noqa: E402
from torch_seed_recipe import SeedNet  # noqa: E402

torch.set_num_threads(a.threads); torch.manual_seed(0)
net = lite(a.classes) if a.net == "lite" else SeedNet(a.height, a.width, a.classes); opt = torch.optim.Adam(net.parameters(), 1e-4)
x = torch.rand(a.batch, 3, a.height, a.width); y = (torch.rand(a.batch, a.classes) > 0.5).float()
cpu, wall = [], []
for i in range(a.warmup + a.steps):
    c0, t0 = time.process_time(), time.perf_counter()
    opt.zero_grad(); F.binary_cross_entropy_with_logits(net(x), y).backward(); opt.step()
    if i >= a.warmup:
        cpu.append(1000 * (time.process_time() - c0)); wall.append(1000 * (time.perf_counter() - t0))
cpu.sort()
print(json.dumps({"model": f"torch-{a.net}", "size": f"{a.width}x{a.height}", "batch": a.batch, "threads": a.threads,
                  "cpuMinMs": round(cpu[0], 1), "cpuMedianMs": round(cpu[len(cpu) // 2], 1),
                  "wallMinMs": round(min(wall), 1), "load": round(os.getloadavg()[0], 1)}))
