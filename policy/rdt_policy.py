"""RDT as a policy: the one object training and evaluation both stand on.

It holds the runner (the diffusion transformer; during training the accelerate / DeepSpeed-wrapped
one), the ``Conditioner`` (SigLIP, T5 or precomputed embeddings, condition dropout) and the mapping
options of the typed config (action encoding, state layout, image view, control frequency).

Training::

    policy = RDTPolicy(runner, Conditioner(vision, text, ...), cfg, base_source=...)
    loss, active = policy.compute_loss(collate(samples), generator)   # diffusion loss of a batch
    policy.save_pretrained("checkpoint-N")                             # full model or LoRA adapter

Evaluation (``libero_eval/runner.py``)::

    policy = RDTPolicy.from_pretrained("checkpoints/run/checkpoint-2000", device="cuda")
    policy.reset(num_slots=2)
    policy.start_episode(slot, seed=trial_seed)
    policy.observe(slot, prev_obs)                 # the step before `obs` (optional)
    chunk = policy.predict_action([obs0, obs1], instruction, slots=[0, 1])   # (2, 64, 128)
    action = policy.decode(chunk[i, j], obs_now)   # 7-d LIBERO action against the live pose

A live observation goes through the same code as a dataset sample: ``policy.libero_mapping`` (state
vector, image view, action mask), ``policy.observation`` (camera slots and image history, per
environment slot: ``[t-1: cam_high, right_wrist, left_wrist] [t: ...]``; at the first call of an
episode frame t is repeated as t-1 with mask False, as the dataset does at a demo start),
``policy.batch`` (the batch keys) and ``Conditioner(train=False)``.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections import deque
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import torch

from configs.launch import LaunchSettings
from configs.schema import CAMERA_SLOTS, EVAL_DTYPES, Config
from policy.batch import SAMPLE, action_targets, collate
from policy.checkpoints import TRAIN_CONFIG, PolicyError, ResolvedCheckpoint, resolve_checkpoint
from policy.conditioning import Conditioner
from policy.libero_mapping import (
    ENV_IMAGE_KEYS,
    OscScale,
    action_loss_weight,
    action_mask,
    decode_actions,
    libero_image_to_view,
    pose_from_env_obs,
    state_from_env_obs,
)
from policy.observation import camera_slot_images, history_indices
from utils.atomic import atomic_write_text

log = logging.getLogger(__name__)


REPO_ROOT = Path(__file__).resolve().parents[1]
EVAL_SUITE = "eval"  # the suite name of live observations (no dataset statistics are used in evaluation)


def unwrap_runner(model):
    """The RDTRunner inside accelerate / DeepSpeed / peft wrappers."""
    from models.rdt_runner import RDTRunner

    m = model
    for _ in range(5):
        if isinstance(m, RDTRunner):
            return m
        m = getattr(m, "module", None) or getattr(m, "base_model", None) or getattr(m, "model", None)
    raise TypeError(f"no RDTRunner inside {type(model).__name__}")


def strip_parallel_wrappers(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside DDP / DeepSpeed engines and ``torch.compile`` (what ``accelerator.unwrap_model``
    returns; a peft model is kept: its adapters act in place, so its ``predict_action`` is the
    fine-tuned one)."""
    import os

    if not torch.cuda.is_available():
        # accelerate imports DeepSpeed here; without a GPU its accelerator detection warns "Setting
        # accelerator to CPU ..." in the middle of an evaluation's progress bars. Say it is the CPU.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from accelerate.utils import extract_model_from_parallel

    return extract_model_from_parallel(model)


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


def _torch_dtype(dtype: Optional[str | torch.dtype], device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype not in EVAL_DTYPES:
            raise PolicyError(f"unknown dtype {dtype!r}; expected one of {list(EVAL_DTYPES)}")
        return getattr(torch, dtype)
    return dtype


class RDTPolicy:
    """Batched RDT: the diffusion loss of training batches, and action chunks for several LIBERO
    environments at once (one forward for all of them).

    Args:
        model: RDTRunner, or the training wrapper around it (accelerate / DeepSpeed / peft).
        conditioner: turns a collated batch into the runner's inputs (on the model's device).
        cfg: the typed config the model is trained with (``configs.schema.Config``).
        text: T5Embedder for instructions missing from ``lang_store`` (evaluation), or None; then
            ``text_loader`` builds it lazily on a miss, if given.
        base_source: what a LoRA adapter is saved against (``rdt_base.json``).
    """

    def __init__(self, model, conditioner: Conditioner, cfg: Config, *, text=None, lang_store=None,
                 text_loader: Optional[Callable] = None, num_inference_steps: Optional[int] = None,
                 base_source: Optional[str] = None, checkpoint: str = ""):
        self.model, self.conditioner, self.cfg = model, conditioner, cfg
        self.text, self.lang_store, self._text_loader = text, lang_store, text_loader
        self.num_inference_steps = num_inference_steps
        self.base_source = base_source
        self.checkpoint = checkpoint
        ds, common = cfg.dataset, cfg.common  # validated by configs.schema
        self.action_encoding: str = ds.action_encoding
        self.use_joint_state = ds.use_joint_state
        self.control_freq = ds.control_freq
        self.instruction_source: str = ds.instruction_source
        self.image_view: str = ds.image_view  # as in training (policy.libero_mapping)
        self.history = common.img_history_size
        self.chunk_size = common.action_chunk_size
        self.scale = OscScale()  # the simulator's own OSC limits (make_env uses the default controller)
        self._action_mask = action_mask(self.action_encoding)
        weight = action_loss_weight(cfg.train.position_loss_weight)
        self._loss_weight = None if weight is None else torch.from_numpy(weight)
        self._lang_cache: dict[str, torch.Tensor] = {}
        self._frames: dict[int, deque] = {}
        self._generators: dict[int, torch.Generator] = {}
        self.infer_ms: list[float] = []  # wall time of every predict_action call
        self.last_infer_ms = float("nan")

    @property
    def device(self) -> torch.device:
        return self.conditioner.device

    @property
    def dtype(self) -> torch.dtype:
        return self.conditioner.dtype

    @property
    def vision(self):
        return self.conditioner.vision

    @property
    def runner(self):
        """The runner (peft-wrapped under LoRA) without the distributed wrappers: for sampling."""
        return strip_parallel_wrappers(self.model)

    @property
    def training(self) -> bool:
        return self.model.training

    def train(self, mode: bool = True) -> "RDTPolicy":
        self.model.train(mode)
        return self

    # -------------------------------------------------------------- training
    def compute_loss(self, batch: dict, generator: Optional[torch.Generator] = None,
                     timing: Callable = contextlib.nullcontext) -> tuple[torch.Tensor, torch.Tensor]:
        """Diffusion loss of a collated training batch (condition dropout, noise and augmentation from
        ``generator``) -> (loss, loss on the active action slots). ``timing``: a context manager
        factory around the conditioning (the encoders' share of a step)."""
        with timing():
            inputs = self.conditioner(batch, generator, train=True)
        actions = action_targets(batch, self.device)
        return self.model(action_gt=actions, generator=generator, return_active=True,
                          loss_weight=self._loss_weight, **inputs)

    @torch.no_grad()
    def sample(self, batch: dict, generator: Optional[torch.Generator] = None,
               noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Sampled action chunks (B, 64, 128) for a collated batch (no condition dropout)."""
        inputs = self.conditioner(batch, train=False)
        return self.runner.predict_action(**inputs, generator=generator, noise=noise,
                                          num_inference_steps=self.num_inference_steps)

    def save_pretrained(self, directory: str | Path, state_dict: Optional[dict] = None,
                        run_info: Optional[dict] = None) -> None:
        """The model in save_pretrained form, or the LoRA adapter (with its base reference), and the
        typed config as ``train_config.json``, so `from_pretrained` rebuilds the policy from the folder.
        ``state_dict``: the whole model's weights to write (gathered ones under ZeRO-3, or the EMA's);
        ``run_info``: training's fuller record (paths, data) holding the same ``config``."""
        from models.loading import save_pretrained
        from models.lora import is_lora, save_lora

        model = self.runner
        if is_lora(model):
            save_lora(model, directory, self.base_source, state_dict=state_dict)
        else:
            save_pretrained(unwrap_runner(model), directory, state_dict=state_dict)
        info = run_info if run_info is not None else {"config": self.cfg.to_dict()}
        atomic_write_text(Path(directory) / TRAIN_CONFIG, json.dumps(info, indent=2))

    # -------------------------------------------------------------- construction
    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu", *,
                        config: Optional[str | Path] = None, vision_encoder: Optional[str] = None,
                        text_encoder: Optional[str] = None, lang_embed_dir: Optional[str | Path] = None,
                        use_ema: bool = False, dtype: Optional[str | torch.dtype] = None,
                        num_inference_steps: Optional[int] = None, overrides: Sequence[str] = (),
                        resolved: Optional[ResolvedCheckpoint] = None) -> "RDTPolicy":
        """Rebuild runner + encoders + mapping options from a checkpoint (full, LoRA adapter, ``ema/``,
        a DeepSpeed ``.pt`` or a hub id; see `policy.checkpoints.resolve_checkpoint`), for inference.

        Encoder paths: the argument here > the training launch's (``configs.launch.LaunchSettings``,
        stored in the checkpoint) > ``model.vision_encoder`` / ``text_encoder``.
        ``lang_embed_dir``: precomputed T5 embeddings (``scripts/preprocess_language_embeddings.py``);
        T5 is then only loaded for an instruction missing from the store.
        """
        from models.loading import load_runner

        ck = resolved or resolve_checkpoint(path, config, use_ema, overrides)
        cfg, launch = ck.config, ck.launch or LaunchSettings()
        device = torch.device(device)
        dtype = _torch_dtype(dtype, device)
        model_cfg = cfg.model
        vis_path = _resolve_asset(vision_encoder or launch.vision_encoder or model_cfg.vision_encoder)
        runner = load_runner(str(ck.weights), cfg, dtype=dtype).to(device=device, dtype=dtype).eval()
        runner.requires_grad_(False)
        vision = load_vision_encoder(vis_path, cfg, dtype, device)
        txt_path = _resolve_asset(text_encoder or launch.text_encoder or model_cfg.text_encoder)
        load_text = functools.partial(load_text_encoder, txt_path, cfg, dtype, device)
        store = _language_store(lang_embed_dir or launch.lang_embed_dir, bool(lang_embed_dir),
                                model_cfg.lang_token_dim)
        if store is not None:
            store.check_model(txt_path, "--text_encoder" if text_encoder else "the checkpoint's text encoder")
        # Text conditioning is always given as embeddings (computed once per instruction).
        conditioner = Conditioner(vision, text=None, dtype=dtype, num_cameras=len(CAMERA_SLOTS))
        return cls(runner, conditioner, cfg, text=None if store is not None else load_text(), lang_store=store,
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
        frame = tuple(libero_image_to_view(np.asarray(obs[k], np.uint8), self.image_view) for k in ENV_IMAGE_KEYS)
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
    def observation_sample(self, obs: Mapping[str, np.ndarray], instruction: str, slot: int = 0) -> dict:
        """One live observation as a sample (``policy.batch.SAMPLE`` keys, what the dataset gives
        for a recorded step, without the action targets), its language embedding included.

        Pushes the observation into its slot's history first; a slot whose history holds a single
        frame (episode start) repeats it as the t-1 frame with mask False.
        """
        self.observe(slot, obs)
        frames = list(self._frames[slot])  # episode start: fewer than `history` frames
        idx, valid = history_indices(len(frames) - 1, self.history)
        per_camera = [np.stack([frames[i][c] for i in idx]) for c in range(len(ENV_IMAGE_KEYS))]
        images, image_mask = camera_slot_images(per_camera, valid)  # cam_high, right_wrist; left_wrist: none
        state, state_mask = state_from_env_obs(obs, self.use_joint_state)
        return {
            SAMPLE.images: images,
            SAMPLE.image_mask: image_mask,
            SAMPLE.state: state.astype(np.float32)[None],
            SAMPLE.state_elem_mask: state_mask,
            SAMPLE.action_elem_mask: self._action_mask,
            SAMPLE.ctrl_freq: self.control_freq,
            SAMPLE.instruction: instruction,
            SAMPLE.suite: EVAL_SUITE,
            SAMPLE.lang_embed: self.language(instruction),
        }

    def build_batch(self, obs_batch: Sequence[Mapping[str, np.ndarray]], instructions: str | Sequence[str],
                    slots: Optional[Sequence[int]] = None) -> dict:
        """The batch (``policy.batch.collate`` of one ``observation_sample`` per observation) for the
        current observations of environment ``slots`` (default 0..B-1)."""
        B = len(obs_batch)
        slots = list(range(B)) if slots is None else list(slots)
        if isinstance(instructions, str):
            instructions = [instructions] * B
        if len(slots) != B or len(instructions) != B:
            raise ValueError(f"{B} observations but {len(slots)} slots / {len(instructions)} instructions")
        return collate([self.observation_sample(obs, text, slot)
                        for obs, text, slot in zip(obs_batch, instructions, slots)])

    # -------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_action(self, obs_batch: Sequence[Mapping[str, np.ndarray]], instructions: str | Sequence[str],
                       slots: Optional[Sequence[int]] = None) -> np.ndarray:
        """One batched forward for B environments -> (B, 64, 128) float32 predicted action vectors.

        Decode step j of env i with ``self.decode(chunk[i, j], obs_now)`` against the live pose.
        """
        t0 = time.perf_counter()
        B = len(obs_batch)
        slots = list(range(B)) if slots is None else list(slots)
        batch = self.build_batch(obs_batch, instructions, slots)
        runner = self.runner
        shape = (runner.pred_horizon, runner.action_dim)
        noise = torch.stack([torch.randn(shape, generator=self._generators.get(s)) for s in slots])
        out = self.sample(batch, noise=noise.to(self.device, torch.float32)).float().cpu().numpy()
        self.last_infer_ms = (time.perf_counter() - t0) * 1000.0  # .cpu() synchronised with the device
        self.infer_ms.append(self.last_infer_ms)
        if not np.all(np.isfinite(out)):
            raise RuntimeError("the model predicted non-finite actions")
        return out

    def warmup(self, instruction: str, resolution: int = 128) -> None:
        """One throw-away forward on blank observations (allocations, kernels, the SigLIP background
        embedding, the instruction's embedding), then the latency record is cleared."""
        blank = {k: np.zeros((resolution, resolution, 3), np.uint8) for k in ENV_IMAGE_KEYS}
        blank.update(robot0_eef_pos=np.zeros(3), robot0_eef_quat=np.array([0.0, 0.0, 0.0, 1.0]),
                     robot0_gripper_qpos=np.zeros(2), robot0_joint_pos=np.zeros(7))
        frames, gens = self._frames, self._generators
        self._frames, self._generators = {}, {}
        try:
            self.predict_action([blank], instruction, slots=[0])
        finally:
            self._frames, self._generators = frames, gens
            self.infer_ms.clear()

    def decode(self, vec128: np.ndarray, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """One predicted 128-d step -> 7-d LIBERO action, against the pose in `obs` (evaluation settings)."""
        return decode_actions(vec128, pose_from_env_obs(obs), self.action_encoding, self.scale,
                              binarize_gripper=True, clip=True)


def load_vision_encoder(path: Optional[str], cfg: Config, dtype: torch.dtype, device):
    """SigLIP from `path`, checked against the image tokens the config's model takes (training and
    evaluation both load it here)."""
    from models.multimodal_encoder.siglip_encoder import SiglipVisionTower

    vision = SiglipVisionTower(path, dtype=dtype).to(device)
    m = cfg.model
    if vision.hidden_size != m.img_token_dim or vision.num_patches != m.img_tokens_per_image:
        raise PolicyError(f"vision encoder {path} gives {vision.num_patches} tokens x {vision.hidden_size}; the "
                          f"model expects model.img_tokens_per_image={m.img_tokens_per_image} x "
                          f"model.img_token_dim={m.img_token_dim}")
    return vision


def load_text_encoder(path: Optional[str], cfg: Config, dtype: torch.dtype, device):
    """T5 from `path`, checked against the language width the config's model takes."""
    from models.multimodal_encoder.t5_encoder import T5Embedder

    text = T5Embedder(path, max_length=cfg.dataset.tokenizer_max_length, dtype=dtype, device=device)
    if text.hidden_size != cfg.model.lang_token_dim:
        raise PolicyError(f"text encoder {path} has d_model {text.hidden_size}; the model expects "
                          f"model.lang_token_dim={cfg.model.lang_token_dim} (RDT-1B: google/t5-v1_1-xxl, 4096)")
    return text


def _language_store(directory, required: bool, dim: int):
    """The precomputed instruction embeddings in `directory`, or None when there are none
    (``required``: the user named the folder, so its absence is an error)."""
    from policy.lang_embeddings import LangEmbeddingStore

    if directory and Path(_resolve_asset(str(directory))).is_dir():
        return LangEmbeddingStore(_resolve_asset(str(directory)), expected_dim=dim)
    if required:
        raise PolicyError(f"--lang_embed_dir {directory}: "
                          f"{'is a file; expected a folder' if Path(str(directory)).is_file() else 'folder not found'}")
    return None
