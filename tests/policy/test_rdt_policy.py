"""RDTPolicy, the one object training and evaluation stand on: its training loss learns, and what
``save_pretrained`` writes (full model, LoRA adapter) ``from_pretrained`` reads back into a policy
that predicts the same chunks."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from policy.rdt_policy import RDTPolicy
from tests.conftest import fake_observation


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_encoders_dir, tmp_path_factory) -> Path:
    from scripts.bench_eval import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint-1", tiny_encoders_dir)


def _chunk(policy: RDTPolicy, seed: int = 3) -> np.ndarray:
    policy.reset(1)
    policy.start_episode(0, seed=seed)
    return policy.predict_action([fake_observation()], "put the bowl on the stove", slots=[0])


def _with_language(policy: RDTPolicy, batch: dict) -> dict:
    from policy.batch import pad_embeddings

    lang, mask = pad_embeddings([policy.language(t) for t in batch["instructions"]])
    return {**batch, "lang_embeds": lang, "lang_mask": mask}


def test_compute_loss_trains_the_policy(tiny_ckpt, libero_fixture_file, tmp_path):
    """The training step's loss: repeatable for one generator, and a few optimizer steps on the
    policy's own loss lower it (gradients reach the runner, not the frozen encoders)."""
    from data.dataset import LiberoDataset
    from policy.batch import collate

    policy = RDTPolicy.from_pretrained(tiny_ckpt, "cpu")
    ds = LiberoDataset(policy.cfg, {"libero_goal": {"path": str(libero_fixture_file.parent), "layout": "raw"}},
                       cache_dir=tmp_path)
    batch = _with_language(policy, collate([ds[i] for i in (0, 5, 10, 15)]))
    policy.runner.requires_grad_(True)
    policy.train()

    def loss_at(seed: int) -> torch.Tensor:
        return policy.compute_loss(batch, torch.Generator().manual_seed(seed))[0]

    first = loss_at(0)
    assert torch.isfinite(first) and first.item() == loss_at(0).item()
    optimizer = torch.optim.AdamW(policy.runner.parameters(), lr=1e-3)
    for _ in range(15):
        optimizer.zero_grad()
        loss_at(0).backward()
        optimizer.step()
    assert all(p.grad is None for p in policy.vision.parameters())
    assert loss_at(0).item() < 0.7 * first.item()


def test_save_pretrained_round_trip(tiny_ckpt, tmp_path):
    policy = RDTPolicy.from_pretrained(tiny_ckpt, "cpu")
    before = _chunk(policy)
    out = tmp_path / "saved"
    policy.save_pretrained(out)
    assert json.loads((out / "train_config.json").read_text())["config"] == policy.cfg.to_dict()
    again = RDTPolicy.from_pretrained(out, "cpu")
    np.testing.assert_array_equal(_chunk(again), before)


def test_lora_adapter_round_trip(tiny_ckpt, tmp_path):
    """A LoRA-wrapped policy saves only its adapter (named against its base); loading it back merges
    the adapter into the base and predicts what the wrapped policy predicted."""
    from models.lora import apply_lora

    policy = RDTPolicy.from_pretrained(tiny_ckpt, "cpu")
    base = _chunk(policy)
    base_copy = tmp_path / "base"
    shutil.copytree(tiny_ckpt, base_copy)
    policy.model = apply_lora(policy.model, rank=4, alpha=8)
    policy.base_source = str(base_copy)
    with torch.no_grad():  # peft starts B at zero (the adapter is a no-op): give it something to carry
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    policy.train(False)
    tuned = _chunk(policy)
    assert np.abs(tuned - base).max() > 1e-3
    out = tmp_path / "adapter"
    policy.save_pretrained(out)
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    np.testing.assert_allclose(_chunk(RDTPolicy.from_pretrained(out, "cpu")), tuned, atol=1e-5)


def _literal_batch(policy: RDTPolicy, obs_batch, instructions, slots) -> dict:
    """``build_batch`` as it was written before it went through ``collate`` (keys, dtypes, values):
    the reference the schema-built batch must equal bit for bit."""
    from policy.libero_mapping import ENV_IMAGE_KEYS, state_from_env_obs
    from policy.observation import camera_slot_images, history_indices
    from policy.batch import pad_embeddings

    B = len(obs_batch)
    images, masks, states = [], [], []
    for obs, slot in zip(obs_batch, slots):
        policy.observe(slot, obs)
        frames = list(policy._frames[slot])
        idx, valid = history_indices(len(frames) - 1, policy.history)
        per_camera = [np.stack([frames[i][c] for i in idx]) for c in range(len(ENV_IMAGE_KEYS))]
        img, msk = camera_slot_images(per_camera, valid)
        images.append(img)
        masks.append(msk)
        vec, state_mask = state_from_env_obs(obs, policy.use_joint_state)
        states.append(vec.astype(np.float32)[None])
    lang, lang_mask = pad_embeddings([policy.language(t) for t in instructions])
    return {
        "images": torch.from_numpy(np.stack(images)), "image_mask": torch.from_numpy(np.stack(masks)),
        "state": torch.from_numpy(np.stack(states)),
        "state_elem_mask": torch.from_numpy(np.stack([state_mask] * B)).float(),
        "action_elem_mask": torch.from_numpy(np.stack([policy._action_mask] * B)).float(),
        "ctrl_freqs": torch.full((B,), policy.control_freq), "instructions": list(instructions),
        "suites": ["eval"] * B, "lang_embeds": lang, "lang_mask": lang_mask,
    }


def _assert_same_batch(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        if torch.is_tensor(value):
            assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
            assert torch.equal(got[key], value), key
        else:
            assert got[key] == value, key


def test_build_batch_equals_the_literal_batch_and_predicts_the_same(tiny_ckpt, monkeypatch):
    """``build_batch`` (one schema sample per observation, through ``collate``) gives the batch the
    literal-key code gave -- same keys, dtypes and values, at an episode start and one step later --
    so the predicted chunks are bit-identical to the ones from that batch."""
    policy = RDTPolicy.from_pretrained(tiny_ckpt, "cpu")
    steps = [[fake_observation(seed=s), fake_observation(seed=s + 10)] for s in (0, 1)]
    texts = ["put the bowl on the stove", "open the drawer"]
    def batches(build) -> list[dict]:
        policy.reset(2)
        return [build(obs, texts, [1, 0]) for obs in steps]
    for got, ref in zip(batches(policy.build_batch), batches(lambda o, t, s: _literal_batch(policy, o, t, s))):
        _assert_same_batch(got, ref)

    def predict(literal: bool) -> list[np.ndarray]:
        if literal:
            monkeypatch.setattr(policy, "build_batch", lambda o, t, s: _literal_batch(policy, o, t, s))
        policy.reset(2)
        for slot in (0, 1):
            policy.start_episode(slot, seed=5 + slot)
        return [policy.predict_action(obs, texts, [0, 1]) for obs in steps]
    for a, b in zip(predict(False), predict(True)):
        np.testing.assert_array_equal(a, b)


def test_dataset_sample_and_observation_sample_collate_alike(tiny_ckpt, libero_fixture_file, tmp_path):
    """A recorded step (``LiberoDataset``) and a live observation (``RDTPolicy.observation_sample``)
    are samples of one schema: collated, they share every key but the action targets, with the
    same dtypes and shapes."""
    from data.dataset import LiberoDataset
    from policy.batch import BATCH, SAMPLE, TARGETS, collate

    policy = RDTPolicy.from_pretrained(tiny_ckpt, "cpu")
    ds = LiberoDataset(policy.cfg, {"g": {"path": str(libero_fixture_file.parent), "layout": "raw"}},
                       cache_dir=tmp_path)
    recorded = ds[3]
    recorded[SAMPLE.lang_embed] = policy.language(recorded[SAMPLE.instruction])
    policy.reset(1)
    live = policy.observation_sample(fake_observation(res=128), recorded[SAMPLE.instruction])
    assert set(recorded) - set(live) == TARGETS and set(live) <= set(recorded)
    train_batch, eval_batch = collate([recorded] * 2), collate([live] * 2)
    assert set(train_batch) - set(eval_batch) == {BATCH.actions, BATCH.action_valid, BATCH.action_norm}
    for key, value in eval_batch.items():
        ref = train_batch[key]
        if torch.is_tensor(value):
            assert (value.dtype, value.shape) == (ref.dtype, ref.shape), key
        else:
            assert type(value) is type(ref) and len(value) == len(ref), key
    assert eval_batch[BATCH.suites] == ["eval", "eval"] and train_batch[BATCH.suites] == ["g", "g"]


def test_position_loss_weight_reaches_the_loss(tiny_ckpt, libero_fixture_file, tmp_path):
    """train.position_loss_weight weights the eef position slots (30-32) of the training loss: the
    same batch, noise and timesteps give a larger loss, while the unweighted active-slot MSE is equal."""
    from data.dataset import LiberoDataset
    from policy.batch import collate
    from policy.libero_mapping import action_loss_weight

    assert action_loss_weight(1.0) is None  # the official plain MSE
    weights = action_loss_weight(50.0)
    assert weights[[30, 31, 32]].tolist() == [50.0] * 3 and weights.sum() == 128 - 3 + 150
    plain = RDTPolicy.from_pretrained(tiny_ckpt, "cpu")
    weighted = RDTPolicy.from_pretrained(tiny_ckpt, "cpu", overrides=["train.position_loss_weight=50"])
    assert weighted.cfg.train.position_loss_weight == 50.0
    ds = LiberoDataset(plain.cfg, {"libero_goal": {"path": str(libero_fixture_file.parent), "layout": "raw"}},
                       cache_dir=tmp_path)
    batch = _with_language(plain, collate([ds[i] for i in (0, 5, 10, 15)]))
    loss_p, active_p = plain.compute_loss(batch, torch.Generator().manual_seed(0))
    loss_w, active_w = weighted.compute_loss(batch, torch.Generator().manual_seed(0))
    assert torch.equal(active_p, active_w)
    assert loss_w.item() > loss_p.item() * 1.01
