"""The 128-d unified state/action vector of RDT (slot table of the pre-trained model).

RDT-1B was pre-trained on many robots by scattering each robot's quantities into fixed named slots
of one 128-d vector (plus a 0/1 mask of which slots are filled). Fine-tuning must reuse the same
slots or the pre-trained state/action adaptor sees meaningless inputs. Single-arm robots (LIBERO's
Panda) fill the *right*-arm slots; un-prefixed names are aliases of the right-arm ones.

Layout (indices):
    0-9     right arm joint positions          10-14  right gripper joint positions (10 = gripper_open)
    15-24   right arm joint velocities         25-29  right gripper joint velocities (25 = gripper_open_vel)
    30-32   right eef position x/y/z           33-38  right eef 6D rotation
    39-41   right eef linear velocity          42-44  right eef angular velocity (roll/pitch/yaw)
    45-49   reserved
    50-59   left arm joint positions           60-64  left gripper joint positions (60 = left_gripper_open)
    65-74   left arm joint velocities          75-79  left gripper joint velocities (75 = left_gripper_open_vel)
    80-82   left eef position                  83-88  left eef 6D rotation
    89-91   left eef linear velocity           92-94  left eef angular velocity
    95-99   reserved
    100-101 base linear velocity x/y           102    base angular velocity
    103-127 reserved
"""
from __future__ import annotations

STATE_VEC_LEN = 128


def _build_mapping() -> dict[str, int]:
    m: dict[str, int] = {}

    def arm(prefix: str, alias: str | None, offset: int) -> None:
        names: list[tuple[str, int]] = []
        names += [(f"arm_joint_{i}_pos", offset + i) for i in range(10)]
        names += [(f"gripper_joint_{i}_pos", offset + 10 + i) for i in range(5)]
        names += [("gripper_open", offset + 10)]
        names += [(f"arm_joint_{i}_vel", offset + 15 + i) for i in range(10)]
        names += [(f"gripper_joint_{i}_vel", offset + 25 + i) for i in range(5)]
        names += [("gripper_open_vel", offset + 25)]
        names += [(f"eef_pos_{a}", offset + 30 + i) for i, a in enumerate("xyz")]
        names += [(f"eef_angle_{i}", offset + 33 + i) for i in range(6)]
        names += [(f"eef_vel_{a}", offset + 39 + i) for i, a in enumerate("xyz")]
        names += [(f"eef_angular_vel_{a}", offset + 42 + i) for i, a in enumerate(("roll", "pitch", "yaw"))]
        for name, idx in names:
            m[f"{prefix}_{name}"] = idx
            if alias is not None:
                m[f"{alias}{name}"] = idx

    arm("right", "", 0)
    arm("left", None, 50)
    m["base_vel_x"] = 100
    m["base_vel_y"] = 101
    m["base_angular_vel"] = 102
    return m


STATE_VEC_IDX_MAPPING: dict[str, int] = _build_mapping()
"""Slot name -> index in the 128-d vector (right-arm names also without the ``right_`` prefix)."""

# Convenience index lists for the LIBERO (single Panda arm) mapping.
ARM_JOINT_POS = [STATE_VEC_IDX_MAPPING[f"arm_joint_{i}_pos"] for i in range(7)]  # Panda has 7 joints
GRIPPER_OPEN = STATE_VEC_IDX_MAPPING["gripper_open"]
EEF_POS = [STATE_VEC_IDX_MAPPING[f"eef_pos_{a}"] for a in "xyz"]
EEF_6D = [STATE_VEC_IDX_MAPPING[f"eef_angle_{i}"] for i in range(6)]

assert max(STATE_VEC_IDX_MAPPING.values()) < STATE_VEC_LEN
