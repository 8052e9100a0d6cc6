"""Tables from the init-state premise check (`libero_eval.check_init_states`): one stack, or several.

Pure JSON in, markdown out: no simulator is imported, so results made in throwaway venvs of other
MuJoCo versions are summarised and compared here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from configs.errors import UserError


def load_stack(folder: Path) -> dict[tuple[str, int], dict]:
    """``{(suite, task_id): result}`` of every task JSON under one stack folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder of init-state check results (expected <out>/mujoco-X.Y.Z)")
    out = {}
    for path in sorted(folder.glob("*/task_*.json")):
        data = json.loads(path.read_text())
        out[(data["suite"], int(data["task_id"]))] = data
    if not out:
        raise UserError(f"{folder}: holds no task_*.json results")
    return out


@dataclass
class TaskSummary:
    suite: str
    task_id: int
    task: str
    n: int
    held: int  # states whose premise (every :init predicate but table regions) holds after the settle
    held_before: int  # ... right after set_init_state, before the settle
    all_held: int  # states whose every :init predicate, table regions included, holds after the settle
    goal_after: int  # states whose goal already holds after the settle
    failing: dict[str, tuple[int, int]]  # predicate -> (false before, false after), for those ever false
    max_disp: tuple[float, str]  # mm, object
    max_rot: tuple[float, str]  # deg, object


PREMISE_KINDS = ("object", "state", "fixture")  # what the settle must keep or establish (not "region")


def _all_true(values: Sequence[Optional[bool]], kinds: Optional[Sequence[str]] = None) -> bool:
    return all(v is True for k, v in enumerate(values) if kinds is None or kinds[k] in PREMISE_KINDS)


def summarize_task(data: dict) -> TaskSummary:
    states, kinds = data["states"], data["kinds"]
    failing: dict[str, list[int]] = {}
    for k, text in enumerate(data["premises"]):
        before = sum(1 for s in states if s["premise_before"][k] is not True)
        after = sum(1 for s in states if s["premise_after"][k] is not True)
        if before or after:
            failing[text + ("" if kinds[k] in PREMISE_KINDS else " [table region]")] = [before, after]
    disp, rot = (0.0, "-"), (0.0, "-")
    for s in states:
        for name, o in s["objects"].items():
            disp = max(disp, (o["disp_mm"], name))
            rot = max(rot, (o["rot_deg"], name))
    return TaskSummary(
        suite=data["suite"], task_id=int(data["task_id"]), task=data["task"], n=len(states),
        held=sum(_all_true(s["premise_after"], kinds) for s in states),
        held_before=sum(_all_true(s["premise_before"], kinds) for s in states),
        all_held=sum(_all_true(s["premise_after"]) for s in states),
        goal_after=sum(bool(s["goal_after"]) for s in states),
        failing={k: tuple(v) for k, v in failing.items()}, max_disp=disp, max_rot=rot)


def stack_markdown(results: dict[tuple[str, int], dict]) -> str:
    """One row per task: premise share after (and before) the settle, what fails, the largest motion."""
    any_data = next(iter(results.values()))
    lines = [f"Stack: {_stack_line(any_data['stack'])}", "",
             "| suite | task | premise holds after the settle | before the settle | with table regions | goal already true | "
             "predicates ever false (false before / after the settle) | largest displacement | largest rotation |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(results):
        t = summarize_task(results[key])
        fails = "; ".join(f"{p} {b}/{a}" for p, (b, a) in t.failing.items()) or "-"
        lines.append(f"| {t.suite} | {t.task_id} | {t.held}/{t.n} | {t.held_before}/{t.n} | {t.all_held}/{t.n} | "
                     f"{t.goal_after} | {fails} | "
                     f"{t.max_disp[0]:.1f} mm ({t.max_disp[1]}) | {t.max_rot[0]:.1f}° ({t.max_rot[1]}) |")
    return "\n".join(lines) + "\n"


def _stack_line(v: dict) -> str:
    return (f"mujoco {v.get('mujoco')}, robosuite {v.get('robosuite')}, {v.get('libero_dist')} {v.get('libero')}, "
            f"numpy {v.get('numpy')}")


# ------------------------------------------------------------------------------------------------
# Several stacks
# ------------------------------------------------------------------------------------------------
def pose_differences(a: dict, b: dict) -> list[tuple[float, float, int, str]]:
    """(position mm, rotation deg, state, object) between two stacks' settled poses of one task."""
    sb = {s["state"]: s for s in b["states"]}
    out = []
    for s in a["states"]:
        other = sb.get(s["state"])
        if other is None:
            continue
        for name, o in s["objects"].items():
            if name not in other["objects"]:
                continue
            p = other["objects"][name]
            d = float(np.linalg.norm(np.subtract(o["pos"], p["pos"]))) * 1000.0
            r = quat_angle_deg(np.array(o["quat"]), np.array(p["quat"]))
            out.append((d, r, int(s["state"]), name))
    return out


def quat_angle_deg(q0: np.ndarray, q1: np.ndarray) -> float:
    """Angle (deg) of the rotation between two unit quaternions."""
    dot = abs(float(np.dot(q0 / np.linalg.norm(q0), q1 / np.linalg.norm(q1))))
    return float(np.degrees(2.0 * np.arccos(min(1.0, dot))))


ROUNDING_MM = 0.01  # settled positions are stored to 1 um: smaller differences are rounding


def derive_threshold(diffs_mm: Sequence[float]) -> float:
    """The settled-pose difference (mm) above which an object counts as moved by the stack.

    Between two MuJoCo versions most objects rest within solver noise of each other, and the objects
    whose landing changes differ by millimetres to decimetres. The threshold splits the differences
    above the rounding floor into those two groups by Otsu's method on a log scale (the cut that
    maximises the between-group variance), at the geometric mean of the two values it falls between.
    With fewer than 10 differences above the floor there is nothing to split: 1 mm.
    """
    x = np.sort(np.log10([d for d in diffs_mm if d > ROUNDING_MM]))
    if len(x) < 10:
        return 1.0
    n = len(x)
    csum = np.cumsum(x)
    i = np.arange(1, n)
    m0, m1 = csum[:-1] / i, (csum[-1] - csum[:-1]) / (n - i)
    k = int(np.argmax(i * (n - i) * (m0 - m1) ** 2))
    return float(10 ** ((x[k] + x[k + 1]) / 2))


def compare_markdown(stacks: dict[str, dict[tuple[str, int], dict]], reference: str,
                     threshold_mm: Optional[float] = None) -> tuple[str, float]:
    """Tasks x stacks: premise share, and the objects whose settled pose moved beyond the threshold
    against the reference stack. Returns (markdown, threshold used)."""
    names = list(stacks)
    ref = stacks[reference]
    all_diffs = [d for n in names if n != reference for k in ref if k in stacks[n]
                 for d, _, _, _ in pose_differences(ref[k], stacks[n][k])]
    thr = derive_threshold(all_diffs) if threshold_mm is None else float(threshold_mm)
    head = "| suite | task | " + " | ".join(names) + " |"
    lines = [f"Premise share per stack (states whose every `:init` predicate but the table-region ones is true "
             f"after the settle); "
             f"`moved k (x mm)`: k states in which an object's settled pose is more than {thr:.1f} mm from "
             f"{reference}'s, x the largest such difference.", "", head, "|---|---|" + "---|" * len(names)]
    for key in sorted(ref):
        cells = []
        for n in names:
            data = stacks[n].get(key)
            if data is None:
                cells.append("n/a")
                continue
            t = summarize_task(data)
            cell = f"{t.held}/{t.n}"
            if n != reference:
                moved = [(d, s, o) for d, _, s, o in pose_differences(ref[key], data) if d > thr]
                if moved:
                    worst = max(moved)
                    cell += f", moved {len({s for _, s, _ in moved})} ({worst[0]:.0f} mm {worst[2]})"
            cells.append(cell)
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", thr
