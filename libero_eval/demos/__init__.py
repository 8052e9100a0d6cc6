"""Demonstrations recorded in the LIBERO simulator, written in LIBERO's own HDF5 layout.

- `recording`: episode rollouts (raw and no-noops layouts) and `record_task_file`, the one writer
  of a task's ``<out>/<suite>/<task>_demo.hdf5`` that both dataset makers call with their own
  episode function.
- `motion`: a randomised reach-grasp-lift motion from the benchmark's init states (pipeline data;
  it does not solve tasks) and its dataset maker (CLI: `scripts/make_demo_dataset.py`).
- The scripted expert that solves tasks from privileged simulator state: `waypoints` (scene access,
  the waypoint state machine, pick-and-place), `goal_plans` / `object_plans` (one plan per task,
  ``PLANS`` by task name), `expert` (the task registry, `make_expert`, `evaluate`; CLI:
  `scripts/scripted_expert.py`) and `expert_data` (successful episodes from randomised resets; CLI:
  `scripts/make_expert_dataset.py`).
"""
