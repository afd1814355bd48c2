"""Where a render's CPU goes inside Blender: litter_render.py's scene loop with CPU timers (process time, all
threads) around its phases. Not a test; for BENCHMARKS.md, "Rendering".

  LITTER_BLENDER=packages/render/bench/keep-settings.sh litter render /tmp/r --scenes 1 --views 25 ...
  blender -b --factory-startup --python packages/render/bench/profile-views.py -- /tmp/litter-settings.json SCENES

(keep-settings.sh copies the settings file litter hands to Blender to /tmp/litter-settings.json, and refuses to
replace a file there.) The profile renders into a new temporary folder. Prints one line: CPU seconds per phase,
the loop's wall and CPU seconds, and the CPU seconds per view.
"""
import collections
import json
import os
import sys
import tempfile
import time

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "litter_render.py")
source = open(SCRIPT).read()
namespace = {"__name__": "litter_render_profiled"}
# Everything but the final main(): the functions, without serving litter's protocol on stdin.
exec(compile(source[: source.rindex("\nmain()")], SCRIPT, "exec"), namespace)
cpu = collections.defaultdict(float)


def timed(name):
    inner = namespace[name]

    def wrapper(*args, **kwargs):
        started = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            cpu[name] += time.process_time() - started

    namespace[name] = wrapper


for phase in ["build", "setup_index_pass", "render_view", "pixel_counts", "projection_box", "strip_png_metadata", "emit"]:
    timed(phase)
argv = sys.argv[sys.argv.index("--") + 1 :]
with open(argv[0]) as f:
    settings = json.load(f)
settings["threads"] = 1
# Its renders go to a fresh folder of its own, never over the render the settings came from.
settings["out"] = tempfile.mkdtemp(prefix="litter-profile-views-")
settings["scratch"] = os.path.join(settings["out"], "scratch")
os.makedirs(settings["scratch"])
scenes = int(argv[1]) if len(argv) > 1 else 1
wall, process = time.perf_counter(), time.process_time()
for index in range(scenes):
    namespace["render_scene"](settings, index)
views = scenes * len(namespace["views"](settings, 0, __import__("random").Random(0)))
total = time.process_time() - process
print(
    "profile",
    json.dumps({k: round(v, 3) for k, v in cpu.items()}),
    f"wall {time.perf_counter() - wall:.2f} s, cpu {total:.2f} s, {views} views, {total / views:.3f} s cpu per view",
    file=sys.stderr,
)
