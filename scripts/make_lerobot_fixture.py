"""Write a LeRobot-format LIBERO dataset from a no-noops LIBERO HDF5 file, with lerobot's own writer.

**Needs the ``lerobot`` package** (not a dependency of this repo: it needs torchvision, which does not
install beside the repo's CPU torch). Run it in a separate virtual environment, e.g.::

    python3.12 -m venv /tmp/lerobot-venv
    /tmp/lerobot-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 "lerobot[dataset]==0.6.1" h5py

The conversion is frame by frame, the way the public LIBERO conversions do it (openpi's
``examples/libero/convert_libero_data_to_lerobot.py`` over OpenVLA's no-noops RLDS, whose builder
rotates the frames 180° and derives the instruction from the file name; the LeRobot team's
``HuggingFaceVLA/libero``): per step ``t`` of each demo

- cameras: ``obs/agentview_rgb[t][::-1, ::-1]`` and ``obs/eye_in_hand_rgb[t][::-1, ::-1]``
  (LIBERO's stored frame rotated 180°);
- state (8,) float32 = ``obs/ee_pos[t]`` (3) + ``obs/ee_ori[t]`` (axis-angle, 3) + ``obs/gripper_states[t]`` (2);
- action (7,) float32 = ``actions[t]`` (raw LIBERO action, gripper -1 open / +1 close);
- task = the instruction derived from the file name.

``--keys lerobot`` names the features like ``lerobot/libero`` / ``HuggingFaceVLA/libero``
(``observation.images.image``, ``observation.images.image2``, ``observation.state``, ``action``);
``--keys openpi`` like ``physical-intelligence/libero`` (``image``, ``wrist_image``, ``state``,
``actions``). ``--storage video`` encodes mp4 with lerobot's default encoder, ``image`` stores PNGs in
the parquet files. The layout is the one the installed lerobot writes (0.6.x: v3.0; 0.3.x: v2.1).
``--hdf5_copy`` also writes a gzip-compressed copy of the source HDF5 file (same arrays and
attributes) for the comparison tests.

The test fixtures under ``tests/fixtures/lerobot_libero/`` were made with (tests/fixtures/README.md)::

    python -m scripts.make_demo_dataset --suite libero_goal --tasks 1 --episodes 2 --format no_noops \\
        --length_scale 0.25 --seed 0 --out /tmp/demo            # in the repo's own environment
    SRC=/tmp/demo/libero_goal/put_the_bowl_on_the_stove_demo.hdf5
    FIX=tests/fixtures/lerobot_libero
    <lerobot 0.6.1 venv>/bin/python scripts/make_lerobot_fixture.py --hdf5 $SRC --out $FIX/v30_video \\
        --keys lerobot --storage video --hdf5_copy $FIX/hdf5/put_the_bowl_on_the_stove_demo.hdf5
    <lerobot 0.6.1 venv>/bin/python scripts/make_lerobot_fixture.py --hdf5 $SRC --out $FIX/v30_image \\
        --keys lerobot --storage image
    <lerobot 0.3.3 venv>/bin/python scripts/make_lerobot_fixture.py --hdf5 $SRC --out $FIX/v21_video \\
        --keys openpi --storage video

lerobot 0.3.3 (the last release writing v2.1) needs ``torch<2.8`` and ``av<15``
(``pip install "lerobot==0.3.3" "av==14.2.0" h5py``).
"""
from __future__ import annotations

import argparse
import inspect
import json
import re
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

KEYS = {
    "lerobot": {"agentview": "observation.images.image", "wrist": "observation.images.image2",
                "state": "observation.state", "action": "action"},
    "openpi": {"agentview": "image", "wrist": "wrist_image", "state": "state", "action": "actions"},
}
FPS = 10  # what the public LIBERO conversions label (LIBERO itself controls at 20 Hz)


def instruction_from_filename(path: Path) -> str:
    """``..._SCENE3_turn_on_the_stove_demo.hdf5`` -> ``turn on the stove`` (as OpenVLA's RLDS builder;
    the same rule as ``data.libero_hdf5.instruction_from_filename``)."""
    stem = path.stem[:-5] if path.stem.endswith("_demo") else path.stem
    m = re.search(r"SCENE\d+_", stem)
    if m:
        stem = stem[m.end():]
    return stem.replace("_", " ").strip()


def features(keys: dict, storage: str, hw: tuple[int, int]) -> dict:
    img = {"dtype": storage, "shape": (hw[0], hw[1], 3), "names": ["height", "width", "channel"]}
    return {
        keys["agentview"]: dict(img),
        keys["wrist"]: dict(img),
        keys["state"]: {"dtype": "float32", "shape": (8,), "names": ["state"]},
        keys["action"]: {"dtype": "float32", "shape": (7,), "names": ["actions"]},
    }


def demo_keys(f: h5py.File) -> list[str]:
    return sorted((k for k in f["data"] if re.fullmatch(r"demo_\d+", k)), key=lambda k: int(k.split("_")[1]))


def convert(hdf5: Path, out: Path, keys_style: str, storage: str, demos: list[str] | None) -> None:
    import lerobot
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    keys = KEYS[keys_style]
    task = instruction_from_filename(hdf5)
    if out.exists():
        shutil.rmtree(out)
    with h5py.File(hdf5, "r") as f:
        layout = f["data"].attrs.get("layout")
        if layout is not None and str(layout) != "no_noops":
            sys.exit(f"{hdf5}: layout {layout!r}; the LeRobot LIBERO sets come from no-noops data (obs before action)")
        names = demos or demo_keys(f)
        hw = tuple(f[f"data/{names[0]}/obs/agentview_rgb"].shape[1:3])
        ds = LeRobotDataset.create(repo_id=f"local/{out.name}", fps=FPS, root=out, robot_type="panda",
                                   features=features(keys, storage, hw), use_videos=storage == "video")
        new_api = "task" not in inspect.signature(ds.add_frame).parameters  # 0.4+: frame["task"]
        for name in names:
            g = f[f"data/{name}"]
            agent, wrist = g["obs/agentview_rgb"][()], g["obs/eye_in_hand_rgb"][()]
            state = np.concatenate([g["obs/ee_pos"][()], g["obs/ee_ori"][()], g["obs/gripper_states"][()]], axis=1)
            actions = g["actions"][()]
            for t in range(len(actions)):
                frame = {
                    keys["agentview"]: np.ascontiguousarray(agent[t][::-1, ::-1]),
                    keys["wrist"]: np.ascontiguousarray(wrist[t][::-1, ::-1]),
                    keys["state"]: state[t].astype(np.float32),
                    keys["action"]: actions[t].astype(np.float32),
                }
                if new_api:
                    ds.add_frame({**frame, "task": task})
                else:
                    ds.add_frame(frame, task=task)
            ds.save_episode()
        if hasattr(ds, "finalize"):
            ds.finalize()
    shutil.rmtree(out / "images", ignore_errors=True)  # the writer's temporary PNGs (already embedded/encoded)
    (out / "README.md").unlink(missing_ok=True)
    info = json.loads((out / "meta" / "info.json").read_text())
    print(f"{out}: lerobot {lerobot.__version__}, codebase {info['codebase_version']}, {info['total_episodes']} "
          f"episodes, {info['total_frames']} frames ({', '.join(names)} of {hdf5.name})")


def compressed_copy(src: Path, dst: Path) -> None:
    """Same groups, datasets (values, dtypes, shapes) and attributes; large datasets gzip-compressed."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(src, "r") as fi, h5py.File(dst, "w") as fo:
        for k, v in fi.attrs.items():
            fo.attrs[k] = v

        def visit(name, obj):
            if isinstance(obj, h5py.Group):
                grp = fo.require_group(name)
            else:
                kw = dict(compression="gzip", compression_opts=9, shuffle=True) if obj.size > 256 else {}
                grp = fo.create_dataset(name, data=obj[()], **kw)
            for k, v in obj.attrs.items():
                grp.attrs[k] = v
        fi.visititems(visit)
    print(f"{dst}: compressed copy of {src.name}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--hdf5", required=True, type=Path, help="no-noops LIBERO HDF5 file (scripts/make_demo_dataset.py)")
    ap.add_argument("--out", required=True, type=Path, help="dataset folder to (re)create")
    ap.add_argument("--keys", choices=tuple(KEYS), default="lerobot")
    ap.add_argument("--storage", choices=("video", "image"), default="video")
    ap.add_argument("--demos", nargs="+", default=None, help="demo groups to convert (default: all)")
    ap.add_argument("--hdf5_copy", type=Path, default=None, help="also write a gzip-compressed copy of --hdf5 here")
    args = ap.parse_args(argv)
    convert(args.hdf5, args.out, args.keys, args.storage, args.demos)
    if args.hdf5_copy:
        compressed_copy(args.hdf5, args.hdf5_copy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
