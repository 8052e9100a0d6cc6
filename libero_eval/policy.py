"""A trained RDT checkpoint as a LIBERO policy: observations in, 64-step chunks of 128-d actions out.

Everything is rebuilt from the checkpoint folder alone (``train_config.json`` written by
``train/train_sft.py``): the runner, the SigLIP / T5 encoders, the action encoding, whether joints
are in the state, the control frequency and the instruction source. The observation -> model input
path reuses the training code: ``data.libero_mapping`` (state vector, image flip, action mask) and
``train.batch.collate``-style dicts fed to ``policy.conditioning.Conditioner(train=False)``, so training and
evaluation condition the model identically.

Image history (``common.img_history_size = 2``), per environment slot::

    slot order  [t-1: cam_high, right_wrist, left_wrist] [t: cam_high, right_wrist, left_wrist]
    cameras      agentview       eye_in_hand  (absent)     agentview    eye_in_hand  (absent)
    t-1 frame    the observation one simulator step before t; at the first call of an episode
                 it repeats frame t with mask False (what the dataset does at a demo start)

Typical use (the rollout loop in ``libero_eval/eval_rdt_libero.py``)::

    policy = RDTPolicy.from_checkpoint("checkpoints/run/checkpoint-2000", device="cuda")
    policy.reset(num_slots=2)
    policy.start_episode(slot, seed=trial_seed)
    policy.observe(slot, prev_obs)                 # the step before `obs` (optional)
    chunk = policy.predict_chunk([obs0, obs1], instruction, slots=[0, 1])   # (2, 64, 128)
    # decode chunk[i, j] against the live pose at every executed step (data.libero_mapping.decode_actions)
"""
from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from configs.errors import UserError
from configs.schema import CAMERA_SLOTS, Config
from data.libero_mapping import (
    OscScale,
    action_mask,
    decode_actions,
    libero_image_to_view,
    pose_from_env_obs,
    state_from_env_obs,
)
from libero_eval.sim_worker import IMAGE_KEYS
from policy.observation import camera_slot_images, history_indices

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_CONFIG = "train_config.json"
NUM_SLOTS_PER_FRAME = len(CAMERA_SLOTS)  # cam_high, right_wrist, left_wrist (absent on LIBERO)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class PolicyError(UserError, ValueError):
    """A checkpoint / encoder / option problem found before any simulator starts."""


# ------------------------------------------------------------------------------------------------
# Checkpoint resolution
# ------------------------------------------------------------------------------------------------
@dataclass
class ResolvedCheckpoint:
    weights: Path  # folder (save_pretrained / LoRA adapter) or bare weights file
    config: Config  # the resolved typed config the model was trained with
    train_args: dict  # training flags ({} when unknown)
    source: str  # what the user passed, for the CSV
    data_info: dict = field(default_factory=dict)  # {"suites", "image_hw"} of the training data, if known
    concrete: Optional[Path] = None  # the checkpoint a run folder resolved to (pass it back as --checkpoint)

    def training_resolution(self) -> Optional[int]:
        """The square camera size the model was trained on (None when unknown or mixed)."""
        sizes = {tuple(hw) for hw in self.data_info.get("image_hw", [])}
        if len(sizes) == 1:
            h, w = sizes.pop()
            return int(h) if h == w else None
        return None


def _find_train_config(path: Path, levels: int = 4) -> Optional[Path]:
    """train_config.json in `path` (a folder) or in one of its parents (bare DeepSpeed .pt files)."""
    p = path if path.is_dir() else path.parent
    for _ in range(levels):
        if (p / TRAIN_CONFIG).is_file():
            return p / TRAIN_CONFIG
        if p.parent == p:
            break
        p = p.parent
    return None


def resolve_checkpoint(source: str | Path, config: Optional[str | Path] = None, use_ema: bool = False,
                       overrides: Sequence[str] = ()) -> ResolvedCheckpoint:
    """Checkpoint folder, run folder (newest complete ``checkpoint-N``), bare weights file
    (DeepSpeed ``mp_rank_00_model_states.pt``, needs ``config`` unless a ``train_config.json`` sits in
    a parent folder) or, with ``config``, a hub id -> weights path + training config.
    Raises `PolicyError` with the fix."""
    from configs.loader import load_typed
    from models.loading import looks_like_hub_id
    from policy.checkpoints import checkpoint_config, complete_checkpoints

    path = Path(source)
    if not path.exists() and looks_like_hub_id(source) and config is not None:  # e.g. the released base model
        return ResolvedCheckpoint(weights=path, config=load_typed(config, overrides), train_args={}, source=str(source))
    if not path.exists():
        raise PolicyError(f"checkpoint not found: {source} (expected a checkpoint-N folder, a training run "
                          f"folder with checkpoint-N subfolders, or a weights file with --config)")
    if path.is_dir() and not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        ckpts = complete_checkpoints(path)
        if not ckpts:
            raise PolicyError(f"{path} holds no model (no config.json / adapter_config.json) and no complete "
                              f"checkpoint-N subfolder (one with trainer_state.json)")
        step, path = ckpts[-1]
        log.info("run folder %s: using its newest complete checkpoint %s", source, path.name)
    if use_ema:
        if not path.is_dir() or not (path / "ema").is_dir():
            raise PolicyError(f"--ema: {path} has no ema/ folder (train with --use_ema)")
        weights = path / "ema"
    else:
        weights = path
    train_args: dict = {}
    data_info: dict = {}
    if config is not None:
        if not Path(config).is_file():
            raise PolicyError(f"--config {config}: file not found")
        cfg = load_typed(config, overrides)
    else:
        tc = _find_train_config(path)
        if tc is None:
            raise PolicyError(f"{path}: no {TRAIN_CONFIG} next to the weights (or in a parent folder); pass the "
                              f"YAML config the model was trained with, e.g. --config configs/base.yaml")
        data = json.loads(tc.read_text())
        train_args, data_info = data.get("args") or {}, data.get("data") or {}
        cfg = checkpoint_config(data["config"], str(tc), overrides)
    return ResolvedCheckpoint(weights=weights, config=cfg, train_args=train_args, source=str(source),
                              data_info=data_info, concrete=path)


def _resolve_asset(name: Optional[str]) -> Optional[str]:
    """Relative encoder paths in configs are relative to the repo root (configs/tiny.yaml)."""
    if not name:
        return name
    p = Path(name).expanduser()
    if p.exists():
        return str(p)
    if not p.is_absolute() and (REPO_ROOT / p).exists():
        return str(REPO_ROOT / p)
    return name


# ------------------------------------------------------------------------------------------------
# Policy
# ------------------------------------------------------------------------------------------------
class RDTPolicy:
    """Batched RDT inference for several LIBERO environments (one forward for all of them).

    Args:
        runner: RDTRunner (eval mode, on `device`).
        vision: SiglipVisionTower. text: T5Embedder, or None when every instruction is in `lang_store`
            (then `text_loader` builds T5 lazily on a miss, if given).
        cfg: the typed training config (``configs.schema.Config``).
    """

    def __init__(self, runner, vision, cfg: Config, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, text=None, lang_store=None, text_loader=None,
                 num_inference_steps: Optional[int] = None, checkpoint: str = ""):
        from policy.conditioning import Conditioner

        self.runner, self.vision, self.text = runner, vision, text
        self.cfg = cfg
        self.device = torch.device(device)
        self.dtype = dtype
        self.lang_store, self._text_loader = lang_store, text_loader
        self.num_inference_steps = num_inference_steps
        self.checkpoint = checkpoint
        ds, common = cfg.dataset, cfg.common  # validated by configs.schema
        self.action_encoding: str = ds.action_encoding
        self.use_joint_state = ds.use_joint_state
        self.control_freq = ds.control_freq
        self.instruction_source: str = ds.instruction_source
        self.image_view: str = ds.image_view  # as in training (data.libero_mapping)
        self.history = common.img_history_size
        self.chunk_size = common.action_chunk_size
        self.scale = OscScale()  # the simulator's own OSC limits (make_env uses the default controller)
        self._action_mask = action_mask(self.action_encoding)
        # Text conditioning is always given as embeddings (computed once per instruction).
        self.conditioner = Conditioner(vision, text=None, dtype=dtype, num_cameras=NUM_SLOTS_PER_FRAME)
        self._lang_cache: dict[str, torch.Tensor] = {}
        self._frames: dict[int, deque] = {}
        self._generators: dict[int, torch.Generator] = {}
        self.infer_ms: list[float] = []  # wall time of every predict_chunk call
        self.last_infer_ms = float("nan")

    # -------------------------------------------------------------- construction
    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", *,
                        config: Optional[str | Path] = None, vision_encoder: Optional[str] = None,
                        text_encoder: Optional[str] = None, lang_embed_dir: Optional[str | Path] = None,
                        use_ema: bool = False, dtype: Optional[str | torch.dtype] = None,
                        num_inference_steps: Optional[int] = None, overrides: Sequence[str] = (),
                        resolved: Optional[ResolvedCheckpoint] = None) -> "RDTPolicy":
        """Rebuild runner + encoders + mapping options from a checkpoint (see `resolve_checkpoint`).

        Encoder paths: the flag here > the training flag > ``model.vision_encoder`` / ``text_encoder``.
        ``lang_embed_dir``: precomputed T5 embeddings (``scripts/preprocess_language_embeddings.py``);
        T5 is then only loaded for an instruction missing from the store.
        """
        from data.lang_embeddings import LangEmbeddingStore
        from models.loading import load_runner
        from models.multimodal_encoder.siglip_encoder import SiglipVisionTower
        from models.multimodal_encoder.t5_encoder import T5Embedder

        ck = resolved or resolve_checkpoint(path, config, use_ema, overrides)
        cfg, targs = ck.config, ck.train_args
        device = torch.device(device)
        if dtype is None:
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        elif isinstance(dtype, str):
            if dtype not in DTYPES:
                raise PolicyError(f"unknown dtype {dtype!r}; expected one of {list(DTYPES)}")
            dtype = DTYPES[dtype]
        model_cfg = cfg.model
        vis_path = _resolve_asset(vision_encoder or targs.get("pretrained_vision_encoder_name_or_path")
                                  or model_cfg.vision_encoder)
        txt_path = _resolve_asset(text_encoder or targs.get("pretrained_text_encoder_name_or_path")
                                  or model_cfg.text_encoder)
        runner = load_runner(str(ck.weights), cfg, dtype=dtype).to(device=device, dtype=dtype).eval()
        runner.requires_grad_(False)
        vision = SiglipVisionTower(vis_path, dtype=dtype).to(device)
        if vision.hidden_size != model_cfg.img_token_dim or vision.num_patches != model_cfg.img_tokens_per_image:
            raise PolicyError(f"vision encoder {vis_path} gives {vision.num_patches} tokens x {vision.hidden_size}; "
                              f"the checkpoint expects {model_cfg.img_tokens_per_image} x {model_cfg.img_token_dim}")
        max_len = cfg.dataset.tokenizer_max_length

        def load_text():
            text = T5Embedder(txt_path, max_length=max_len, dtype=dtype, device=device)
            if text.hidden_size != model_cfg.lang_token_dim:
                raise PolicyError(f"text encoder {txt_path} has d_model {text.hidden_size}; the checkpoint "
                                  f"expects model.lang_token_dim={model_cfg.lang_token_dim}")
            return text

        store = None
        store_dir = lang_embed_dir or targs.get("precomp_lang_embed")
        if store_dir and Path(_resolve_asset(str(store_dir))).is_dir():
            store = LangEmbeddingStore(_resolve_asset(str(store_dir)), expected_dim=model_cfg.lang_token_dim)
        elif lang_embed_dir:
            raise PolicyError(f"--lang_embed_dir {lang_embed_dir}: folder not found")
        text = None if store is not None else load_text()
        return cls(runner, vision, cfg, device=device, dtype=dtype, text=text, lang_store=store,
                   text_loader=load_text, num_inference_steps=num_inference_steps, checkpoint=str(ck.weights))

    # -------------------------------------------------------------- episode state
    def reset(self, num_slots: int = 1) -> None:
        """Forget every environment's history (call before a new set of episodes)."""
        self._frames = {i: deque(maxlen=self.history) for i in range(num_slots)}
        self._generators = {}

    def start_episode(self, slot: int, seed: Optional[int] = None) -> None:
        """New episode in `slot`: empty image history; diffusion noise from its own generator, so a
        trial's samples do not depend on which other trials share the batch."""
        self._frames[slot] = deque(maxlen=self.history)
        if seed is None:
            self._generators.pop(slot, None)
        else:
            g = torch.Generator(device="cpu")
            g.manual_seed(int(seed))
            self._generators[slot] = g

    def observe(self, slot: int, obs: Mapping[str, np.ndarray]) -> None:
        """Push one observation's camera images (in the training data's ``image_view``: by default
        flipped to the true camera view) into `slot`'s history."""
        frame = tuple(libero_image_to_view(np.asarray(obs[k], np.uint8), self.image_view) for k in IMAGE_KEYS)
        self._frames.setdefault(slot, deque(maxlen=self.history)).append(frame)

    # -------------------------------------------------------------- language
    def language(self, instruction: str) -> torch.Tensor:
        """(L, D) embedding of an instruction: from the store, else T5; cached, so once per task."""
        if instruction not in self._lang_cache:
            emb = None
            if self.lang_store is not None and instruction in self.lang_store:
                emb = self.lang_store.get(instruction)
            if emb is None:
                if self.text is None:
                    if self._text_loader is None:
                        raise PolicyError(f"no embedding for {instruction!r} and no text encoder")
                    log.info("instruction %r not in the embedding store: loading the T5 encoder", instruction)
                    self.text = self._text_loader()
                e, m = self.text.encode([instruction])
                emb = e[0, m[0]]
            self._lang_cache[instruction] = emb.detach().to("cpu", torch.float32)
        return self._lang_cache[instruction]

    def prepare_instructions(self, instructions: Sequence[str], release_text_encoder: bool = True) -> None:
        """Embed every instruction of a run up front; then free T5 (T5-XXL holds ~10 GB of GPU
        memory that the rollouts do not need). A later unseen instruction reloads it."""
        for text in instructions:
            self.language(text)
        if release_text_encoder and self.text is not None and self._text_loader is not None:
            self.text = None
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    # -------------------------------------------------------------- inputs
    def build_batch(self, obs_batch: Sequence[Mapping[str, np.ndarray]], instructions: str | Sequence[str],
                    slots: Optional[Sequence[int]] = None) -> dict:
        """The collated batch (keys of ``train.batch.collate``) for the current observations.

        Pushes each observation into its slot's history first; slots whose history holds a single
        frame (episode start) repeat it as the t-1 frame with mask False.
        """
        from policy.conditioning import pad_embeddings

        B = len(obs_batch)
        slots = list(range(B)) if slots is None else list(slots)
        if isinstance(instructions, str):
            instructions = [instructions] * B
        if len(slots) != B or len(instructions) != B:
            raise ValueError(f"{B} observations but {len(slots)} slots / {len(instructions)} instructions")
        images, masks, states = [], [], []
        state_mask = None
        for obs, slot in zip(obs_batch, slots):
            self.observe(slot, obs)
            frames = list(self._frames[slot])  # episode start: fewer than `history` frames
            idx, valid = history_indices(len(frames) - 1, self.history)
            per_camera = [np.stack([frames[i][c] for i in idx]) for c in range(len(IMAGE_KEYS))]
            img, msk = camera_slot_images(per_camera, valid)  # cam_high, right_wrist; left_wrist: none
            images.append(img)
            masks.append(msk)
            vec, state_mask = state_from_env_obs(obs, self.use_joint_state)
            states.append(vec.astype(np.float32)[None])
        lang, lang_mask = pad_embeddings([self.language(t) for t in instructions])
        return {
            "images": torch.from_numpy(np.stack(images)),
            "image_mask": torch.from_numpy(np.stack(masks)),
            "state": torch.from_numpy(np.stack(states)),
            "state_elem_mask": torch.from_numpy(np.stack([state_mask] * B)).float(),
            "action_elem_mask": torch.from_numpy(np.stack([self._action_mask] * B)).float(),
            "ctrl_freqs": torch.full((B,), self.control_freq),
            "instructions": list(instructions),
            "suites": ["eval"] * B,
            "lang_embeds": lang,
            "lang_mask": lang_mask,
        }

    # -------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_chunk(self, obs_batch: Sequence[Mapping[str, np.ndarray]], instructions: str | Sequence[str],
                      slots: Optional[Sequence[int]] = None) -> np.ndarray:
        """One batched forward for B environments -> (B, 64, 128) float32 predicted action vectors.

        Decode step j of env i with ``self.decode(chunk[i, j], obs_now)`` against the live pose.
        """
        t0 = time.perf_counter()
        B = len(obs_batch)
        slots = list(range(B)) if slots is None else list(slots)
        batch = self.build_batch(obs_batch, instructions, slots)
        kwargs = self.conditioner(batch, train=False)
        shape = (self.runner.pred_horizon, self.runner.action_dim)
        noise = torch.stack([torch.randn(shape, generator=self._generators.get(s)) for s in slots])
        pred = self.runner.predict_action(**kwargs, noise=noise.to(self.device, torch.float32),
                                          num_inference_steps=self.num_inference_steps)
        out = pred.float().cpu().numpy()  # .cpu() synchronises with the device
        self.last_infer_ms = (time.perf_counter() - t0) * 1000.0
        self.infer_ms.append(self.last_infer_ms)
        if not np.all(np.isfinite(out)):
            raise RuntimeError("the model predicted non-finite actions")
        return out

    def warmup(self, instruction: str, resolution: int = 128) -> None:
        """One throw-away forward on blank observations (allocations, kernels, the SigLIP background
        embedding, the instruction's embedding), then the latency record is cleared."""
        blank = {k: np.zeros((resolution, resolution, 3), np.uint8) for k in IMAGE_KEYS}
        blank.update(robot0_eef_pos=np.zeros(3), robot0_eef_quat=np.array([0.0, 0.0, 0.0, 1.0]),
                     robot0_gripper_qpos=np.zeros(2), robot0_joint_pos=np.zeros(7))
        frames, gens = self._frames, self._generators
        self._frames, self._generators = {}, {}
        try:
            self.predict_chunk([blank], instruction, slots=[0])
        finally:
            self._frames, self._generators = frames, gens
            self.infer_ms.clear()

    def decode(self, vec128: np.ndarray, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """One predicted 128-d step -> 7-d LIBERO action, against the pose in `obs` (evaluation settings)."""
        return decode_actions(vec128, pose_from_env_obs(obs), self.action_encoding, self.scale,
                              binarize_gripper=True, clip=True)
