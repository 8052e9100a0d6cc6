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


@pytest.fixture(scope="module")
def tiny_ckpt(tiny_encoders_dir, tmp_path_factory) -> Path:
    from scripts.bench_eval import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint-1", tiny_encoders_dir)


def _observation(res=32, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "agentview_image": rng.integers(0, 255, (res, res, 3), dtype=np.uint8),
        "robot0_eye_in_hand_image": rng.integers(0, 255, (res, res, 3), dtype=np.uint8),
        "robot0_eef_pos": np.array([-0.1, 0.0, 1.0]), "robot0_eef_quat": np.array([1.0, 0.0, 0.0, 0.0]),
        "robot0_gripper_qpos": np.array([0.03, -0.03]), "robot0_joint_pos": np.zeros(7),
    }


def _chunk(policy: RDTPolicy, seed: int = 3) -> np.ndarray:
    policy.reset(1)
    policy.start_episode(0, seed=seed)
    return policy.predict_action([_observation()], "put the bowl on the stove", slots=[0])


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
