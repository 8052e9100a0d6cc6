"""From a collated batch (training samples or live observations) to the runner's condition inputs.

``Conditioner`` runs on the model's device: condition dropout, state noise, image augmentation
(training only), SigLIP on the real images, and T5 (online, or precomputed embeddings). Training and
evaluation both call it, so an observation is conditioned exactly as a training sample was.
All randomness comes from one ``torch.Generator`` per step, so a resumed run replays it exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from configs.schema import DatasetConfig
from policy.augment import augment_images
from policy.batch import BATCH


@dataclass
class ConditioningOptions:
    """Training-time condition dropout, state noise and augmentation (``dataset`` keys of the typed
    config, where their defaults live). Constructed without arguments: none of them (inference)."""
    cond_mask_prob: float = 0.0      # prob. of dropping language / each camera / the state / ctrl freq
    cam_ext_mask_prob: float = -1.0  # external camera (cam_high) drop prob.; < 0: same as cond_mask_prob
    state_noise_snr: Optional[float] = None
    image_aug: bool = False

    @classmethod
    def from_config(cls, ds_cfg: DatasetConfig) -> "ConditioningOptions":
        """The training-time conditioning of the typed config's ``dataset`` section."""
        return cls(cond_mask_prob=ds_cfg.cond_mask_prob, cam_ext_mask_prob=ds_cfg.cam_ext_mask_prob,
                   state_noise_snr=ds_cfg.state_noise_snr, image_aug=ds_cfg.image_aug)


class Conditioner:
    """Turns a collated batch into ``RDTRunner.compute_loss`` / ``predict_action`` keyword arguments.

    vision: SiglipVisionTower; text: T5Embedder or None (then batches must carry precomputed
    ``lang_embeds`` and ``empty_lang_embed`` is the embedding of "" used for language dropout);
    stats: {suite: {"state_mean": [128], "state_std": [128]}} for state dropout / noise.
    """

    def __init__(self, vision, text=None, empty_lang_embed: Optional[torch.Tensor] = None,
                 stats: Optional[dict] = None, options: ConditioningOptions = ConditioningOptions(),
                 dtype: torch.dtype = torch.float32, num_cameras: int = 3):
        self.vision, self.text = vision, text
        self.empty_lang_embed = empty_lang_embed
        self.stats = stats or {}
        self.opt = options
        self.dtype = dtype
        self.num_cameras = num_cameras

    @property
    def device(self) -> torch.device:
        return self.vision.device

    def _suite_stat(self, suites: Sequence[str], key: str) -> torch.Tensor:
        rows = []
        for s in suites:
            if s not in self.stats or key not in self.stats[s]:
                raise KeyError(f"dataset statistics for suite {s!r} lack {key!r}: run "
                               f"`python -m scripts.compute_dataset_stats` (configs/dataset_stat.json)")
            rows.append(self.stats[s][key])
        return torch.tensor(np.asarray(rows), dtype=torch.float32, device=self.device)

    def _language(self, batch, drop: torch.Tensor):
        if self.text is not None:
            texts = ["" if d else t for t, d in zip(batch[BATCH.instructions], drop.tolist())]
            return self.text.encode(texts)
        if BATCH.lang_embeds not in batch:
            raise ValueError("no text encoder and no precomputed language embeddings in the batch")
        emb = batch[BATCH.lang_embeds].to(self.device, non_blocking=True)
        mask = batch[BATCH.lang_mask].to(self.device, non_blocking=True)
        drop = drop.to(emb.device)
        if drop.any():
            if self.empty_lang_embed is None:
                raise ValueError("language dropout with precomputed embeddings needs the embedding of \"\" "
                                 "(scripts/preprocess_language_embeddings.py stores it)")
            empty = self.empty_lang_embed.to(emb)
            emb = emb.clone()
            mask = mask.clone()
            emb[drop] = 0
            mask[drop] = False
            emb[drop, : empty.shape[0]] = empty
            mask[drop, : empty.shape[0]] = True
        return emb, mask

    def __call__(self, batch: dict, generator: Optional[torch.Generator] = None, train: bool = True) -> dict:
        dev = self.device
        B = batch[BATCH.state].shape[0]
        p = self.opt.cond_mask_prob if train else 0.0

        def coin(shape, prob):
            if prob <= 0:
                return torch.zeros(shape, dtype=torch.bool, device=dev)
            return torch.rand(shape, generator=generator, device=dev) < prob

        state = batch[BATCH.state].to(dev, non_blocking=True)
        state_mask = batch[BATCH.state_elem_mask].to(dev, non_blocking=True).unsqueeze(1)
        action_mask = batch[BATCH.action_elem_mask].to(dev, non_blocking=True).unsqueeze(1)
        ctrl = batch[BATCH.ctrl_freqs].to(dev, non_blocking=True).float()
        image_mask = batch[BATCH.image_mask].to(dev, non_blocking=True).bool()
        images = batch[BATCH.images].to(dev, non_blocking=True)

        if train:
            # Condition dropout, as the official dataset does per sample.
            ctrl = torch.where(coin((B,), p), torch.zeros_like(ctrl), ctrl)
            drop_state = coin((B,), p)
            if drop_state.any():
                mean = self._suite_stat(batch[BATCH.suites], "state_mean").unsqueeze(1)
                state = torch.where(drop_state.view(-1, 1, 1), mean, state)
            state_mask = torch.where(coin((B,), p).view(-1, 1, 1), torch.zeros_like(state_mask), state_mask)
            S = image_mask.shape[1]
            cam = torch.arange(S, device=dev) % self.num_cameras
            ext_p = self.opt.cam_ext_mask_prob if self.opt.cam_ext_mask_prob >= 0 else p
            probs = torch.where(cam == 0, torch.tensor(ext_p, device=dev), torch.tensor(p, device=dev))
            drop_img = torch.rand((B, S), generator=generator, device=dev) < probs if p > 0 or ext_p > 0 \
                else torch.zeros((B, S), dtype=torch.bool, device=dev)
            image_mask = image_mask & ~drop_img
            if self.opt.state_noise_snr is not None:
                std = self._suite_stat(batch[BATCH.suites], "state_std").unsqueeze(1)
                sigma = std / np.sqrt(10 ** (float(self.opt.state_noise_snr) / 10))
                state = state + torch.randn(state.shape, generator=generator, device=dev) * sigma * state_mask
            if self.opt.image_aug:
                flat = images.reshape(-1, *images.shape[2:])
                images = augment_images(flat, image_mask.reshape(-1), generator).reshape(images.shape)
        lang, lang_mask = self._language(batch, coin((B,), p).cpu() if train else torch.zeros(B, dtype=torch.bool))
        img_tokens = self.vision.encode_slots(images, image_mask)
        dt = self.dtype
        return dict(
            lang_tokens=lang.to(dt), lang_attn_mask=lang_mask.to(dev),
            img_tokens=img_tokens.to(dt),
            state_tokens=state.to(dt),
            action_mask=action_mask.to(dt), state_mask=state_mask.to(dt),
            ctrl_freqs=ctrl.to(dt),
        )
