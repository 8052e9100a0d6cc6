"""Frozen encoders: tiny SigLIP / T5 through the real from_pretrained path, on-device preprocessing."""
import pytest
import torch

from models.multimodal_encoder.siglip_encoder import SiglipVisionTower
from models.multimodal_encoder.t5_encoder import T5Embedder


@pytest.fixture(scope="module")
def siglip(tiny_encoders_dir):
    return SiglipVisionTower(str(tiny_encoders_dir / "siglip"))


@pytest.fixture(scope="module")
def t5(tiny_encoders_dir):
    from configs.loader import load_typed

    return T5Embedder(str(tiny_encoders_dir / "t5"), max_length=load_typed("configs/tiny.yaml").dataset.tokenizer_max_length)


def test_siglip_geometry_and_frozen(siglip):
    assert siglip.num_patches == 16 and siglip.hidden_size == 32 and siglip.image_size == 64
    assert not any(p.requires_grad for p in siglip.parameters())
    siglip.train()
    assert not siglip.vision_tower.training


def test_preprocess_matches_reference_formula(siglip):
    img = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    x = siglip.preprocess(img)
    ref = (img.permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.5
    torch.testing.assert_close(x, ref)


def test_preprocess_pads_non_square_with_mean_colour(siglip):
    img = torch.full((1, 32, 64, 3), 255, dtype=torch.uint8)
    x = siglip.preprocess(img)  # 64 x 64 after padding (no resize needed)
    bg = (127 / 255.0 - 0.5) / 0.5
    assert torch.allclose(x[0, :, :16], torch.full_like(x[0, :, :16], bg))
    assert torch.allclose(x[0, :, 16:48], torch.ones_like(x[0, :, 16:48]))


def test_resize_path_runs(siglip):
    img = torch.randint(0, 256, (3, 128, 128, 3), dtype=torch.uint8)
    assert siglip.preprocess(img).shape == (3, 3, 64, 64)


def test_bad_image_input_is_a_clear_error(siglip):
    with pytest.raises(ValueError, match="uint8"):
        siglip.preprocess(torch.zeros(1, 64, 64, 3))


def test_background_slots_reuse_cached_embedding_exactly(siglip):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 6, 64, 64, 3), dtype=torch.uint8, generator=g)
    mask = torch.tensor([[True, True, False, True, True, False], [False, True, False, True, False, False]])
    fast = siglip.encode_slots(images, mask)
    naive = siglip.encode_slots_naive(images, mask)
    assert fast.shape == (2, 6 * 16, 32)
    torch.testing.assert_close(fast, naive, atol=1e-5, rtol=1e-5)


def test_t5_encodes_with_padding_mask(t5):
    emb, mask = t5.encode(["put the bowl on the stove", "open the top drawer and put the bowl inside"])
    assert emb.shape[0] == 2 and emb.shape[2] == 32 and mask.dtype == torch.bool
    assert mask[1].all() and not mask[0].all()
    # The locally trained tokenizer knows the LIBERO vocabulary (not everything is <unk>).
    ids = t5.tokenizer("put the bowl on the stove").input_ids
    assert ids.count(t5.tokenizer.unk_token_id) == 0 and ids[-1] == t5.tokenizer.eos_token_id


def test_t5_rejects_over_long_instruction(t5):
    with pytest.raises(ValueError, match="exceeds the T5 max length"):
        t5.encode([" ".join(["bowl"] * 100)])


@pytest.mark.sim
def test_every_libero_instruction_fits_the_tiny_presets(t5):
    """The CPU presets (tiny, demo, learn) can be trained on any LIBERO / LIBERO-PRO task: the tiny
    tokenizer's token count of every instruction is within their limit (it once was not, for 71 of
    the 130 standard tasks)."""
    from configs.suites import EVAL_SUITES
    from libero_eval import env as lenv

    longest = 0
    for name in (*EVAL_SUITES, "libero_90"):
        suite = lenv.get_suite(name)
        for task_id in range(suite.n_tasks):
            text = lenv.task_instruction(suite, task_id, "problem_info")
            longest = max(longest, len(t5.tokenizer(text).input_ids))
            t5.encode([text])  # raises past the limit
    assert 40 < longest <= t5.max_length


def test_missing_encoder_dir_is_a_clear_error(tmp_path):
    with pytest.raises(OSError, match="make_tiny_encoders"):
        SiglipVisionTower(str(tmp_path / "nope"))
