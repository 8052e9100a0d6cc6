"""libero_object plans of the scripted expert (floor scene, basket): pick one object up and drop
it into the basket. ``PLANS`` maps a task name to its plan builder; a task whose object needs its
own grasp gets its own builder in place of the generic one (`plan_object_in_basket`).

Measured on the 50 benchmark init states (seed 0): alphabet_soup 50/50. The other objects use the
one generic grasp from the object's collision boxes and are NOT validated: cream_cheese reached
only 27/50 (the flat box: the descent stalls above it), the rest were tried on 2 init states only.
"""
from __future__ import annotations

import numpy as np

from libero_eval.demos.waypoints import (Context, PlanBuilder, Scene, Waypoint, pick_and_place, quat_xyzw_to_mat,
                                         wrap_half_pi, yaw_of)


def collision_box(scene: Scene, obj: str) -> tuple[np.ndarray, np.ndarray]:
    """Bounds (lo, hi) of `obj`'s collision boxes in its body frame (an upright object's size)."""
    m, d = scene.model, scene.sim.data
    body = m.body_name2id(f"{obj}_main")
    Rb, pb = d.body_xmat[body].reshape(3, 3), d.body_xpos[body]
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
    for g in range(m.ngeom):
        name = m.body_id2name(m.geom_bodyid[g]) or ""
        if not name.startswith(obj) or not m.geom_contype[g] or m.geom_type[g] != 6:
            continue
        corners = d.geom_xpos[g] + (signs * m.geom_size[g]) @ d.geom_xmat[g].reshape(3, 3).T
        local = (corners - pb) @ Rb
        lo, hi = np.minimum(lo, local.min(0)), np.maximum(hi, local.max(0))
    if not np.isfinite(lo).all():
        raise ValueError(f"{obj} has no collision boxes")
    return lo, hi


def plan_object_in_basket(obj: str):
    """Grasp `obj` from above (fingers across its narrower side, up to 2.5 cm below its top) and
    drop it into the basket from a few centimetres above the basket's rim."""

    def build(ctx: Context) -> list[Waypoint]:
        sc = ctx.scene
        lo, hi = collision_box(sc, obj)
        height = hi[2] - lo[2]
        grasp_z = hi[2] - min(0.025, 0.5 * height) + ctx.u(-0.003, 0.003)
        size = hi[:2] - lo[:2]
        centre = np.array([(hi[0] + lo[0]) / 2, (hi[1] + lo[1]) / 2, grasp_z])
        # fingers open along the gripper's y: along the object's y when its x side is the longer
        extra = 0.0 if size[0] >= size[1] else np.pi / 2

        def grasp_offset(c: Context) -> np.ndarray:
            R = quat_xyzw_to_mat(sc.body_quat_xyzw(obj))
            return R @ centre

        def yaw(c: Context) -> float:
            return wrap_half_pi(yaw_of(sc.body_quat_xyzw(obj)) + extra)

        return pick_and_place(
            ctx, obj, lambda c: sc.body_pos("basket_1") + [0.0, 0.0, 0.0],
            grasp_offset=grasp_offset, grasp_yaw=yaw,
            hover=0.12, carry_height=0.14, release_height=0.10,
        )

    return build


OBJECT_SUITE_TARGETS = {
    "alphabet_soup": "alphabet_soup_1", "cream_cheese": "cream_cheese_1", "salad_dressing": "salad_dressing_1",
    "bbq_sauce": "bbq_sauce_1", "ketchup": "ketchup_1", "tomato_sauce": "tomato_sauce_1", "butter": "butter_1",
    "milk": "milk_1", "chocolate_pudding": "chocolate_pudding_1", "orange_juice": "orange_juice_1",
}



PLANS: dict[str, PlanBuilder] = {
    f"pick_up_the_{name}_and_place_it_in_the_basket": plan_object_in_basket(obj)
    for name, obj in OBJECT_SUITE_TARGETS.items()
}
