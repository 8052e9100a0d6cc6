"""``policy.batch.collate``: the one place a batch is made of samples, for training and evaluation."""
import numpy as np
import pytest
import torch

from policy.batch import BATCH, OPTIONAL, REQUIRED, SAMPLE, TARGETS, collate


def _sample(T=4, with_targets=True, lang=None):
    s = {SAMPLE.images: np.zeros((6, 8, 8, 3), np.uint8), SAMPLE.image_mask: np.ones(6, bool),
         SAMPLE.state: np.ones((1, 128), np.float64), SAMPLE.state_elem_mask: np.ones(128, np.float32),
         SAMPLE.action_elem_mask: np.ones(128, np.float32), SAMPLE.ctrl_freq: 20,
         SAMPLE.instruction: "do it", SAMPLE.suite: "s"}
    if with_targets:
        s.update({SAMPLE.actions: np.zeros((T, 128), np.float64), SAMPLE.action_valid: np.ones(T, bool),
                  SAMPLE.action_norm: np.ones(128, np.float32)})
    if lang is not None:
        s[SAMPLE.lang_embed] = torch.ones(lang, 5)
    return s


def test_schema_names_are_distinct_and_partitioned():
    assert len(set(vars(SAMPLE).values())) == len(vars(SAMPLE))
    assert len(set(vars(BATCH).values())) == len(vars(BATCH))
    assert REQUIRED | OPTIONAL == set(vars(SAMPLE).values()) and not REQUIRED & OPTIONAL


def test_collate_dtypes_and_padding():
    batch = collate([_sample(lang=2), _sample(lang=3)])
    assert set(batch) == set(vars(BATCH).values())
    assert batch[BATCH.images].dtype == torch.uint8 and batch[BATCH.image_mask].dtype == torch.bool
    for key in (BATCH.state, BATCH.state_elem_mask, BATCH.actions, BATCH.action_elem_mask, BATCH.action_norm,
                BATCH.ctrl_freqs):
        assert batch[key].dtype == torch.float32, key
    assert batch[BATCH.action_valid].dtype == torch.bool and batch[BATCH.state].shape == (2, 1, 128)
    assert batch[BATCH.lang_embeds].shape == (2, 3, 5) and batch[BATCH.lang_mask].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert batch[BATCH.instructions] == ["do it"] * 2 and batch[BATCH.suites] == ["s"] * 2


def test_collate_takes_only_what_samples_have():
    """Evaluation samples have no targets (and none are invented); a partial or inconsistent sample,
    a missing or unknown key is an error."""
    batch = collate([_sample(with_targets=False)])
    assert not {BATCH.actions, BATCH.action_valid, BATCH.action_norm, BATCH.lang_embeds} & set(batch)
    partial = _sample()
    del partial[SAMPLE.action_norm]
    with pytest.raises(KeyError, match="action_norm"):
        collate([partial])
    with pytest.raises(ValueError, match="sample 1"):
        collate([_sample(), _sample(with_targets=False)])
    missing = _sample()
    del missing[SAMPLE.state]
    with pytest.raises(KeyError, match="state"):
        collate([missing])
    with pytest.raises(KeyError, match="ctrl_freqs"):
        collate([{**_sample(), "ctrl_freqs": 20.0}])
    assert TARGETS <= OPTIONAL
