"""Encoder files: round trip, weights_only loading, MONAI-only backbone keys, clear errors on bad files."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets.swin_unetr import SwinTransformer

from smart.models.encoder_io import export_encoder, load_encoder


@pytest.mark.parametrize("which", ["swin", "swin_no_sa", "vit"])
def test_round_trip_gives_identical_outputs(tmp_path, tiny_swin, tiny_vit, which):
    enc = {"swin": tiny_swin, "swin_no_sa": lambda: tiny_swin(sa_stage=None), "vit": tiny_vit}[which]().eval()
    path = export_encoder(enc, tmp_path / "enc" / "encoder.pt", model_config=enc.model_config, method="smart", step=7)
    loaded, meta = load_encoder(path)
    loaded.eval()
    assert meta["method"] == "smart" and meta["step"] == 7 and meta["arch"] == enc.model_config["arch"]
    assert meta["model_config"] == {k: list(v) if isinstance(v, tuple) else v for k, v in enc.model_config.items()}
    x = torch.rand(1, 1, 32, 32, 32)
    mask = torch.zeros(1, *enc.mask_grid((32, 32, 32)), dtype=torch.bool)
    mask.view(-1)[0] = True
    with torch.no_grad():
        a, b = enc(x, mask=mask), loaded(x, mask=mask)
    for field in ("tokens", "pooled", "cls", "attention"):
        if getattr(a, field) is None:
            assert getattr(b, field) is None
        else:
            assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert [p.name for p in path.parent.iterdir()] == ["encoder.pt"]  # no temp file left behind


def test_file_layout_and_monai_backbone(tmp_path, tiny_swin):
    enc = tiny_swin()
    path = export_encoder(enc, tmp_path / "e.pt", model_config=enc.model_config, method="smit", step=0)
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"format", "arch", "model_config", "backbone", "semantic_attention", "mask_token",
                            "method", "step"}
    assert payload["format"] == "smart-encoder/1" and payload["arch"] == "swin"
    ref = SwinTransformer(in_chans=1, embed_dim=12, window_size=(4, 4, 4), patch_size=(2, 2, 2),
                          depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2))
    ref.load_state_dict(payload["backbone"], strict=True)
    assert torch.equal(payload["mask_token"], enc.mask_token.detach())
    assert set(payload["semantic_attention"]) == set(enc.semantic_attention.state_dict())


def test_bad_files_raise_naming_the_file(tmp_path, tiny_swin, tiny_vit):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_encoder(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="junk.pt"):
        load_encoder(junk)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ValueError, match=r"other.pt: not a SMART encoder file"):
        load_encoder(other)
    enc = tiny_swin()
    path = export_encoder(enc, tmp_path / "e.pt", model_config=enc.model_config, method="smart", step=1)
    payload = torch.load(path, weights_only=True)
    payload["model_config"]["embed_dim"] = 24
    torch.save(payload, path)
    with pytest.raises(ValueError, match="e.pt: weights do not match its model_config"):
        load_encoder(path)
    with pytest.raises(ValueError, match="arch='vit'"):
        export_encoder(enc, tmp_path / "x.pt", model_config=tiny_vit().model_config, method="smart", step=1)


def test_files_from_before_sa_placement_load_as_side_branch(tmp_path, tiny_swin):
    """Encoder files written before ``sa_placement`` existed hold side-branch SA weights: loading them must not
    silently switch to the in-line placement (which changes stage 4)."""
    enc = tiny_swin(sa_placement="branch").eval()
    path = export_encoder(enc, tmp_path / "old.pt", model_config=enc.model_config, method="smart", step=1)
    payload = torch.load(path, weights_only=True)
    del payload["model_config"]["sa_placement"]
    torch.save(payload, path)
    loaded, meta = load_encoder(path)
    assert loaded.sa_placement == "branch" and meta["model_config"]["sa_placement"] == "branch"
    x = torch.rand(1, 1, 32, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).pooled, enc(x).pooled)
