"""On-device SigLIP preprocessing (pad to square with the mean colour, bicubic resize to 384,
normalise) against transformers' SiglipImageProcessor on real LIBERO frames (the official pipeline:
expand2square in PIL, then the processor)."""
import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from policy.libero_mapping import flip_to_camera_view

SIZE = 384


@pytest.fixture(scope="module")
def tower_and_processor(tmp_path_factory):
    from transformers import SiglipVisionConfig, SiglipVisionModel

    try:
        from transformers import SiglipImageProcessorPil as Processor
    except ImportError:
        from transformers import SiglipImageProcessor as Processor
    from models.multimodal_encoder.siglip_encoder import SiglipVisionTower

    out = tmp_path_factory.mktemp("siglip384")
    SiglipVisionModel(SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, image_size=SIZE, patch_size=32)).save_pretrained(out)
    processor = Processor(size={"height": SIZE, "width": SIZE}, resample=3, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor.save_pretrained(out)
    return SiglipVisionTower(str(out)), processor


def expand2square(img: Image.Image, colour) -> Image.Image:
    """The official RDT pad: centre the image on a square of the background colour."""
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    canvas = Image.new(img.mode, (side, side), colour)
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas


def grey_levels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).abs() * 0.5 * 255  # normalised with std 0.5


def test_device_preprocessing_matches_the_processor_on_fixture_frames(tower_and_processor, libero_fixture_file):
    tower, processor = tower_and_processor
    with h5py.File(libero_fixture_file, "r") as f:
        frames = np.concatenate([flip_to_camera_view(f[f"data/demo_0/obs/{k}"][::20]) for k in
                                 ("agentview_rgb", "eye_in_hand_rgb")])
    colour = tuple(int(0.5 * 255) for _ in range(3))
    for images in (frames, np.ascontiguousarray(frames[:, :, 16:112])):  # square 128x128, and 128x96 (pad path)
        ours = tower.preprocess(torch.from_numpy(images))
        ref = processor([expand2square(Image.fromarray(im), colour) for im in images], return_tensors="pt")
        diff = grey_levels(ours, ref["pixel_values"])
        assert ours.shape == ref["pixel_values"].shape == (len(images), 3, SIZE, SIZE)
        # measured: mean 0.16-0.20, 99th percentile 0.7, max 10.3 grey levels (at sharp edges: torch's
        # bicubic kernel is a=-0.75, PIL's a=-0.5)
        assert diff.mean() < 0.5 and diff.flatten().quantile(0.99) < 1.5 and diff.max() <= 16, \
            (float(diff.mean()), float(diff.max()))
