"""Build, save and load RDT runners from every place a researcher keeps them.

``load_runner(source, cfg)`` accepts:
  * ``None``                        -> random init from the YAML config (``build_runner``);
  * a hub id (``robotics-diffusion-transformer/rdt-1b``) -> downloaded with huggingface_hub;
  * a directory written by ``save_pretrained`` here or by the official code (config.json +
    model.safetensors / pytorch_model.bin), e.g. ``checkpoints/run/checkpoint-2000``;
  * a DeepSpeed ``mp_rank_00_model_states.pt`` (weights under ``["module"]``) or any ``.pt``/
    ``.bin``/``.safetensors`` state_dict file (architecture from the YAML config).

Loading is strict: a key or shape mismatch lists the first differing keys.
config.json uses the official flat layout (constructor arguments and the model config side by side),
so checkpoints are interchangeable with the official code.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Optional

import torch

from configs.errors import UserError
from configs.schema import Config
from models.rdt_runner import RDTRunner
from utils.atomic import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
SAFE_WEIGHTS = "model.safetensors"
TORCH_WEIGHTS = "pytorch_model.bin"
_CTOR_KEYS = ("action_dim", "pred_horizon", "lang_token_dim", "img_token_dim", "state_token_dim",
              "max_lang_cond_len", "img_cond_len", "lang_pos_embed_config", "img_pos_embed_config")
_MODEL_CONFIG_KEYS = ("rdt", "lang_adaptor", "img_adaptor", "state_adaptor", "noise_scheduler", "ema")


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, unreadable or does not fit the model."""


def looks_like_hub_id(source) -> bool:
    """``owner/name`` that is not a relative/absolute/home path (used only when no such path exists)."""
    text = str(source)
    return text.count("/") == 1 and not text.startswith((".", "/", "~"))


def missing_local_path(source, roots: tuple = ()) -> Optional[str]:
    """Why ``source`` (which does not exist) is a local path with a typo rather than a hub id, or None:
    it is not ``owner/name``, or its first folder exists here (``checkpoints/nope_t5``: the folder
    ``checkpoints`` is local). Saves the minute of hub retries that would end in a network error."""
    text = str(source)
    if not looks_like_hub_id(text):
        return f"{text}: not found (neither a local folder nor an owner/name hub id)"
    first = text.split("/", 1)[0]
    for root in (Path.cwd(), *map(Path, roots)):
        if (root / first).is_dir():
            near = sorted(p.name for p in (root / first).iterdir())[:8]
            return (f"{text}: not found (the folder {root / first} exists but holds no {text.split('/', 1)[1]!r}; "
                    f"it holds {near})")
    return None


def runner_kwargs_from_config(cfg: Config | dict) -> dict:
    """Constructor kwargs of RDTRunner from the typed config (or its dict form)."""
    if isinstance(cfg, Config):
        cfg = cfg.to_dict()
    common, model = cfg["common"], cfg["model"]
    hist, cams, patches = common["img_history_size"], common["num_cameras"], model["img_tokens_per_image"]
    return dict(
        action_dim=common["state_dim"],
        pred_horizon=common["action_chunk_size"],
        config=with_norm({k: model[k] for k in _MODEL_CONFIG_KEYS if k in model}, "the model config"),
        lang_token_dim=model["lang_token_dim"],
        img_token_dim=model["img_token_dim"],
        state_token_dim=model["state_token_dim"],
        max_lang_cond_len=model["max_lang_cond_len"],
        img_cond_len=hist * cams * patches,
        # As the official training script builds them: sin-cos over history and camera axes only
        # (the vision encoder already encodes patch positions); language carries no order.
        lang_pos_embed_config=[["lang", -model["max_lang_cond_len"]]],
        img_pos_embed_config=[["image", [hist, cams, -patches]]],
    )


def build_runner(cfg: Config | dict, dtype: torch.dtype = torch.float32) -> RDTRunner:
    return RDTRunner(**runner_kwargs_from_config(cfg), dtype=dtype)


# The released RDT-1B geometry (hidden, depth, heads): its config.json predates the ``norm`` field.
RELEASED_RDT1B_GEOMETRY = (2048, 28, 32)


def norm_for_legacy_config(rdt_cfg: dict) -> str:
    """The norm of a checkpoint saved without ``rdt.norm``: the released RDT-1B geometry was trained
    with timm 1.0.3's variance norm (``release_var``); any other geometry came from this repo before
    the field existed, when every block used a true RMSNorm (``rms``)."""
    geometry = (rdt_cfg.get("hidden_size"), rdt_cfg.get("depth"), rdt_cfg.get("num_heads"))
    return "release_var" if geometry == RELEASED_RDT1B_GEOMETRY else "rms"


def with_norm(model_cfg: dict, source: str) -> dict:
    """``model_cfg`` with ``rdt.norm`` filled in (``norm_for_legacy_config``) when a checkpoint lacks it."""
    if "norm" in model_cfg["rdt"]:
        return model_cfg
    norm = norm_for_legacy_config(model_cfg["rdt"])
    log.info("%s records no rdt.norm: loading with norm=%s (%s)", source, norm,
             "the released RDT-1B geometry" if norm == "release_var" else "saved before the field existed")
    return {**model_cfg, "rdt": {**model_cfg["rdt"], "norm": norm}}


def runner_kwargs_from_json(data: dict, source: str = "config.json") -> dict:
    """Accept the official flat config.json and a nested {"config": {...}} variant."""
    missing = [k for k in _CTOR_KEYS[:7] if k not in data]
    if missing:
        raise CheckpointError(f"{source} lacks {missing}; is this an RDT runner checkpoint?")
    model_cfg = data["config"] if "config" in data else {k: data[k] for k in _MODEL_CONFIG_KEYS if k in data}
    if "rdt" not in model_cfg:
        raise CheckpointError(f"{source} lacks the 'rdt' model config; is this an RDT runner checkpoint?")
    kwargs = {k: data.get(k) for k in _CTOR_KEYS}
    kwargs["config"] = with_norm(model_cfg, source)
    return kwargs


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc}); truncated or not an RDT checkpoint?") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object (an RDT runner config), got {type(data).__name__}")
    return data


# constructor / model-config entries that fix the parameters and the function, in the YAML's words
_GEOMETRY = {"action_dim": "common.state_dim", "pred_horizon": "common.action_chunk_size",
             "lang_token_dim": "model.lang_token_dim", "img_token_dim": "model.img_token_dim",
             "state_token_dim": "model.state_token_dim", "max_lang_cond_len": "model.max_lang_cond_len",
             "img_cond_len": "common.img_history_size x common.num_cameras x model.img_tokens_per_image",
             "lang_adaptor": "model.lang_adaptor", "img_adaptor": "model.img_adaptor",
             "state_adaptor": "model.state_adaptor", "hidden_size": "model.rdt.hidden_size",
             "depth": "model.rdt.depth", "num_heads": "model.rdt.num_heads", "norm": "model.rdt.norm"}


def _geometry(kwargs: dict) -> dict:
    model = kwargs.get("config") or {}
    flat = {**{k: kwargs.get(k) for k in _CTOR_KEYS}, **{k: model.get(k) for k in ("lang_adaptor", "img_adaptor",
                                                                                    "state_adaptor")},
            **(model.get("rdt") or {})}
    return {k: flat.get(k) for k in _GEOMETRY}


def check_geometry(kwargs: dict, cfg: Config | dict, source: str) -> None:
    """A checkpoint's config.json must describe the model ``cfg`` describes: otherwise training would
    fine-tune (and record) another geometry than the config says, silently."""
    have, want = _geometry(kwargs), _geometry(runner_kwargs_from_config(cfg))
    diff = [f"{_GEOMETRY[k]}: checkpoint {have[k]!r}, config {want[k]!r}" for k in _GEOMETRY if have[k] != want[k]]
    if diff:
        raise CheckpointError(f"{source} describes another model than the config ({'; '.join(diff[:4])}): use the "
                              f"preset it was trained with (its train_config.json), or other weights")


def flat_config(kwargs: dict) -> dict:
    """RDTRunner constructor kwargs -> the official flat config.json layout."""
    flat = {k: v for k, v in kwargs.items() if k != "config"}
    flat.update(kwargs["config"])
    return flat


def save_pretrained(runner: RDTRunner, directory: str | os.PathLike, state_dict: Optional[dict] = None) -> None:
    """config.json (official flat layout) + model.safetensors."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / CONFIG_NAME, json.dumps(flat_config(runner.init_kwargs), indent=2))
    sd = state_dict if state_dict is not None else runner.state_dict()
    with atomic_path(directory / SAFE_WEIGHTS) as tmp:  # mode 0644 under the usual umask (safetensors: 0600)
        save_file({k: v.detach().contiguous().cpu() for k, v in sd.items()}, str(tmp), metadata={"format": "pt"})


def read_state_dict(path: str | os.PathLike) -> dict:
    """Weights from a .safetensors / .bin / .pt file (DeepSpeed model states: the ``module`` entry)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as exc:  # SafetensorError: truncated / corrupt header or data
            raise CheckpointError(f"cannot read weights from {path} (truncated or corrupt?): {exc}") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt / truncated file
        raise CheckpointError(f"cannot read weights from {path}: {exc}") from exc
    for key in ("module", "state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            return obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} does not hold a state_dict (got {type(obj).__name__})")
    return obj


def load_state_dict_strict(runner: torch.nn.Module, state_dict: dict, source: str) -> None:
    """load_state_dict(strict=True) with an error message that names the first differing keys."""
    expected = runner.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong_shape = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
                   for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[:5]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {unexpected[:5]})")
        if wrong_shape:
            parts.append(f"{len(wrong_shape)} with other shapes (first: {wrong_shape[:3]})")
        raise CheckpointError(f"weights in {source} do not fit the model: " + "; ".join(parts))
    runner.load_state_dict(state_dict, strict=True)


def _weights_in_dir(directory: Path) -> Path:
    for name in (SAFE_WEIGHTS, TORCH_WEIGHTS):
        if (directory / name).is_file():
            return directory / name
    ds = directory / "pytorch_model" / "mp_rank_00_model_states.pt"
    if ds.is_file():
        return ds
    raise CheckpointError(f"no {SAFE_WEIGHTS} / {TORCH_WEIGHTS} / pytorch_model/mp_rank_00_model_states.pt "
                          f"in {directory}")


def _download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=[CONFIG_NAME, "*.safetensors", "*.bin"]))
    except Exception as exc:
        raise CheckpointError(
            f"{repo_id!r} is neither a local path nor reachable on the Hugging Face hub ({type(exc).__name__}: "
            f"{exc}). Download it on a machine with network access and pass the local directory.") from exc


def load_runner(source: Optional[str | os.PathLike], cfg: Optional[Config | dict] = None,
                dtype: torch.dtype = torch.float32) -> RDTRunner:
    """See the module docstring. ``cfg`` is needed for random init and for bare weight files."""
    if source is None or str(source) in ("", "none", "None"):
        if cfg is None:
            raise CheckpointError("random init needs a config (configs/base.yaml or tiny.yaml)")
        log.info("building a randomly initialised RDT from the config")
        return build_runner(cfg, dtype)
    path = Path(source)
    if path.is_file():
        if cfg is None:
            raise CheckpointError(f"{path} is a bare weights file: pass the YAML config that describes it")
        runner = build_runner(cfg, dtype)
        load_state_dict_strict(runner, read_state_dict(path), str(path))
        return runner
    if not path.exists():
        problem = missing_local_path(source)
        if problem:
            raise CheckpointError(f"checkpoint {problem}")
        path = _download(str(source))
    if (path / "adapter_config.json").is_file():  # LoRA adapter checkpoint: base + adapter
        return load_lora_runner(path, cfg, dtype)
    config_file = path / CONFIG_NAME
    if config_file.is_file():
        kwargs = runner_kwargs_from_json(_read_json(config_file), str(config_file))
        if cfg is not None:
            check_geometry(kwargs, cfg, str(config_file))
        runner = RDTRunner(**kwargs, dtype=dtype)
    elif cfg is not None:
        runner = build_runner(cfg, dtype)
    else:
        raise CheckpointError(f"{path} has no {CONFIG_NAME} and no config was given")
    weights = _weights_in_dir(path)
    load_state_dict_strict(runner, read_state_dict(weights), str(weights))
    return runner


# LoRA checkpoints (models/lora.py writes them) load here, as one more kind of checkpoint folder.
LORA_BASE_FILE = "rdt_base.json"  # {"base": <where the base weights come from>}


def load_lora_runner(directory: str | os.PathLike, cfg: Optional[Config | dict] = None,
                     dtype: torch.dtype = torch.float32, merge: bool = True):
    """Base (from rdt_base.json) + adapter; merged into a plain RDTRunner unless ``merge=False``."""
    from peft import PeftModel

    directory = Path(directory)
    base_file = directory / LORA_BASE_FILE
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: {'is a file' if directory.exists() else 'not found'}; expected a LoRA "
                              f"checkpoint folder (adapter_config.json + {LORA_BASE_FILE})")
    if not (directory / "adapter_config.json").is_file():
        what = ("a full checkpoint (config.json): it needs no merging" if (directory / "config.json").is_file()
                else "no LoRA adapter (no adapter_config.json)")
        raise CheckpointError(f"{directory} is {what}")
    if not base_file.is_file():
        raise CheckpointError(f"{directory} is a LoRA adapter without {LORA_BASE_FILE}: cannot tell its base model")
    try:
        base_source = json.loads(base_file.read_text())["base"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{base_file}: expected {{\"base\": <path or hub id>}} ({exc!r})") from None
    base_path = Path(base_source)
    if not base_path.is_absolute() and not base_path.exists() and (directory / base_source).exists():
        base_path = directory / base_source
    base = load_runner(str(base_path) if base_path.exists() else base_source, cfg, dtype)
    model = PeftModel.from_pretrained(base, str(directory))
    if merge:
        return model.merge_and_unload()
    return model
