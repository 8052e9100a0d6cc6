"""One evaluation request: the command line of ``libero_eval.eval_rdt_libero``, parsed once into a
frozen, typed value that every step of the evaluation reads (and none changes).

    request = EvalRequest.from_args(build_parser().parse_args(argv))
    cfg = request.applied_to(checkpoint_config)     # the eval flags given, written into cfg.eval

Validation happens once, in a schema: the flags that alias ``configs.schema.EvalConfig`` fields
(``--exec_horizon``, ``--num_envs``, ...) are kept as ``eval_overrides`` and checked only by
``EvalConfig`` / ``Config`` (``eval.exec_horizon`` at most ``common.action_chunk_size``) -- at
construction against base.yaml, so a bad value is refused before a checkpoint loads or a simulator
starts, and again, by the same code, against the checkpoint's own config. The values that are not
config keys (``--suites``, ``--seeds``, ``--torch_threads``) are checked in ``EvalRequest.__post_init__``.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Optional

from configs.errors import UserError, require_device
from configs.loader import BASE_PRESET, load_typed
from configs.schema import Config, ConfigError, EvalConfig
from configs.suites import EVAL_SUITES, check_suite, perturbations_of
from libero_eval import env as lenv

# flags that are aliases of the typed config's eval section (configs/base.yaml holds their defaults)
EVAL_FLAGS = tuple(f.name for f in dataclasses.fields(EvalConfig))


class EvalInputError(UserError, ValueError):
    """Bad command-line input, found before any simulator starts."""


@dataclass(frozen=True)
class EvalRequest:
    """What one ``eval_rdt_libero`` command asks for. ``None``: not given (the checkpoint's config or
    the run decides); ``task_ids`` / ``seeds`` empty: every task / ``eval.seed``."""
    # what to evaluate
    checkpoint: Optional[str]
    config: Optional[str]
    overrides: tuple[str, ...]              # --set KEY=VALUE
    ema: bool
    policy: str                             # "rdt" | "replay"
    demo_file: Optional[str]
    replay_encoding: str
    vision_encoder: Optional[str]
    text_encoder: Optional[str]
    lang_embed_dir: Optional[str]
    instruction_source: Optional[str]
    device: Optional[str]
    torch_threads: Optional[int]
    # protocol
    suites: tuple[str, ...]                 # --robustness already expanded
    task_ids: tuple[int, ...]
    seeds: tuple[int, ...]
    eval_overrides: Mapping[str, Any]       # the EvalConfig fields given as flags
    # outputs and modes
    run_name: Optional[str]
    out_root: str
    wandb: Optional[str]
    retry_errors: bool
    summarize_only: bool
    resolve_only: bool
    progress: bool
    require_verified_stack: bool
    instruction_swap: bool = False          # run the instruction-swap diagnostic instead of the protocol

    def __post_init__(self) -> None:
        if self.device is not None:
            require_device(self.device, "--device")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise EvalInputError(f"--torch_threads must be >= 1, got {self.torch_threads}")
        bad = [s for s in self.seeds if s < 0]
        if bad:
            raise EvalInputError(f"--seeds must be >= 0 (numpy and the simulators take seeds in [0, 2**32)), "
                                 f"got {bad[0]}")
        for name in self.suites:
            check_suite(name, "--suites", EVAL_SUITES)
        unknown = sorted(set(self.eval_overrides) - set(EVAL_FLAGS))
        if unknown:
            raise EvalInputError(f"eval_overrides: {unknown} are not eval.* keys; expected some of {list(EVAL_FLAGS)}")
        self.applied_to(load_typed(BASE_PRESET))  # the schema checks the eval flags before anything loads

    @classmethod
    def from_args(cls, ns: argparse.Namespace) -> "EvalRequest":
        """The request of a parsed command line (``ns`` is only read)."""
        suites = tuple(ns.suites)
        if ns.robustness:  # each standard suite followed by its LIBERO-PRO perturbations
            suites = tuple(dict.fromkeys(s for name in suites for s in [name, *perturbations_of(name)]))
        given = {k: getattr(ns, k) for k in EVAL_FLAGS if getattr(ns, k, None) is not None}
        return cls(
            checkpoint=ns.checkpoint, config=ns.config, overrides=tuple(ns.set), ema=ns.ema, policy=ns.policy,
            demo_file=ns.demo_file, replay_encoding=ns.replay_encoding, vision_encoder=ns.vision_encoder,
            text_encoder=ns.text_encoder, lang_embed_dir=ns.lang_embed_dir,
            instruction_source=ns.instruction_source, device=ns.device, torch_threads=ns.torch_threads,
            suites=suites, task_ids=tuple(ns.task_ids or ()), seeds=tuple(ns.seeds or ()),
            eval_overrides=MappingProxyType(given), run_name=ns.run_name, out_root=ns.out_root, wandb=ns.wandb,
            retry_errors=ns.retry_errors, summarize_only=ns.summarize_only, resolve_only=ns.resolve_only,
            progress=not ns.no_progress, require_verified_stack=ns.require_verified_stack,
            instruction_swap=ns.instruction_swap)

    def applied_to(self, cfg: Config) -> Config:
        """``cfg`` with the eval flags given written into its eval section, validated by the schema
        (``EvalConfig``, then ``Config``); a refused value is one line naming its flag."""
        try:
            return dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, **self.eval_overrides))
        except ConfigError as exc:
            key = re.match(r"eval\.(\w+)", str(exc))  # the schema's messages start with the dotted key
            flag = f"--{key.group(1)}: " if key and key.group(1) in self.eval_overrides else ""
            raise EvalInputError(f"{flag}{exc}") from None


def check_render() -> None:
    """The offscreen renderer works (else one line saying why), before any simulator starts."""
    try:
        lenv.check_render_backend()
    except lenv.RenderBackendError as exc:
        raise EvalInputError(str(exc)) from None
