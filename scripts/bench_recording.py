"""Benchmark: where a recorded demo's time goes (physics or rendering), and what the recorder saves.

Three side-by-side measurements in one run (`libero_eval.demos.profiling`): the median expert step
with the dataset's two cameras vs with them paused; seconds per demo with every simulated frame
rendered (the recorder before it skipped unstored frames) vs only the stored ones; and the wall time
of recording two tasks one after another vs ``--workers`` at a time. The last line::

    recording <task>: all frames <a> s/demo, stored frames <b> s/demo, ratio <r>; <n> tasks serial <c> s, <w> workers <d> s, ratio <q>

Usage::

    python -m scripts.bench_recording                  # libero_goal stove + bowl, 2 demos each
    python -m scripts.bench_recording --episodes 4 --rounds 3
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from configs.errors import exit_cli


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="libero_goal")
    ap.add_argument("--tasks", nargs="+", default=["turn_on_the_stove", "put_the_bowl_on_the_stove"],
                    help="tasks with a scripted expert; the first is timed alone")
    ap.add_argument("--episodes", type=int, default=2, help="demos per task and measurement")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of the per-demo timing")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    from libero_eval import env as lenv
    from libero_eval.demos import profiling

    lenv.check_render_backend()
    task = args.tasks[0]
    split = profiling.step_time_split(args.suite, task, episodes=args.episodes)
    print(f"{task}: a step with both 128 px cameras {split['step_ms']:.1f} ms, without {split['physics_ms']:.1f} ms: "
          f"rendering {split['render_ms']:.1f} ms = {100 * split['render_share']:.0f}% ({split['steps']} steps)")
    per_demo = profiling.time_recording(args.suite, task, episodes=args.episodes, rounds=args.rounds)
    wall = profiling.time_workers(args.suite, args.tasks, episodes=args.episodes, workers=args.workers)
    a, b = per_demo["all_frames"], per_demo["stored_frames"]
    c, d = wall[1], wall[args.workers]
    print(f"recording {task}: all frames {a:.1f} s/demo, stored frames {b:.1f} s/demo, ratio {a / b:.2f}; "
          f"{len(args.tasks)} tasks serial {c:.0f} s, {args.workers} workers {d:.0f} s, ratio {c / d:.2f}")
    return 0


if __name__ == "__main__":
    exit_cli(main)
