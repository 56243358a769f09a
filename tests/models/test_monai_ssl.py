"""``smart export --format monai-ssl``: MONAI's own ``SwinUNETR.load_from`` reads the file and its Swin gives the
same stage features as our encoder; what ``load_from`` leaves at init is exactly what the module documents."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import SwinUNETR

from smart.cli import main
from smart.models.encoder_io import export_encoder
from smart.models.factory import build_encoder
from smart.models.monai_ssl import PREFIX, load_from_skipped, monai_ssl_key, swin_unetr_kwargs


class _ReadRecorder(dict):
    """A state dict that remembers which keys were read (to see what load_from consumes)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def _randomise(module: torch.nn.Module) -> None:
    """Non-default values in every parameter and buffer (incl. norms), so a tensor left at init cannot pass."""
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if t.is_floating_point():
                t.add_(0.05 * torch.randn_like(t))


def _export_both(tmp_path, encoder) -> tuple:
    enc_file = export_encoder(encoder, tmp_path / "encoder.pt", model_config=encoder.model_config, method="smart", step=3)
    out = tmp_path / "monai_ssl.pt"
    assert main(["export", "--encoder", str(enc_file), "--format", "monai-ssl", "--out", str(out)]) == 0
    return enc_file, torch.load(out, weights_only=True)


@pytest.fixture
def tiny_config(tiny_swin):
    return dict(tiny_swin().model_config)


@pytest.mark.parametrize("which", ["tiny", "paper"])
def test_load_from_gives_our_stage_features(tmp_path, tiny_config, paper_swin, which):
    config = tiny_config if which == "tiny" else dict(paper_swin.model_config)
    # A side-branch SA leaves MONAI's stage order intact, so every stage must match; an in-line SA (the default)
    # refines the stage-3 tokens that stage 4 consumes, which a SwinUNETR without SA cannot reproduce (checked below).
    config = {**config, "sa_placement": "branch"}
    encoder = build_encoder(config)
    _randomise(encoder)
    encoder.eval()
    _, weights = _export_both(tmp_path, encoder)
    assert set(weights) == {"state_dict", "swin_unetr"}
    assert weights["swin_unetr"] == swin_unetr_kwargs(encoder.model_config)  # the file says how to build its network
    assert all(k.startswith(PREFIX) for k in weights["state_dict"])
    model = SwinUNETR(**swin_unetr_kwargs(encoder.model_config), out_channels=3).eval()
    recorder = _ReadRecorder(weights["state_dict"])
    model.load_from({"state_dict": recorder})
    # use_v2=False: load_from reads every swinViT tensor of the file
    assert recorder.read == set(weights["state_dict"]) and load_from_skipped(weights["state_dict"]) == []
    x = torch.rand(1, 1, 64, 64, 64)
    with torch.no_grad():
        ours = encoder(x).stages
        theirs = model.swinViT(x, normalize=True)
    assert len(ours) == len(theirs) == 5
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape, k
        assert (a - b).abs().max().item() < 1e-4, f"stage {k}"
    # stage 4 at 64^3: 16 x embed_dim channels on a 2^3 grid
    assert theirs[4].shape == (1, 16 * config["embed_dim"], 2, 2, 2)
    inline = build_encoder({**config, "sa_placement": "inline"}).eval()
    inline.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        refined = inline(x).stages
    for k in range(4):
        assert (refined[k] - theirs[k]).abs().max().item() < 1e-4, f"inline stage {k}"
    assert (refined[4] - theirs[4]).abs().max().item() > 1e-3  # docs/ARCHITECTURE.md "SA placement"


def test_v2_conv_blocks_are_what_load_from_leaves_at_init(tmp_path, tiny_config):
    encoder = build_encoder({**tiny_config, "use_v2": True})
    _randomise(encoder)
    _, weights = _export_both(tmp_path, encoder)
    torch.manual_seed(1)
    model = SwinUNETR(**swin_unetr_kwargs(encoder.model_config), out_channels=2)
    init = {k: v.clone() for k, v in model.swinViT.state_dict().items()}
    recorder = _ReadRecorder(weights["state_dict"])
    model.load_from({"state_dict": recorder})
    skipped = sorted(set(weights["state_dict"]) - recorder.read)
    assert skipped == load_from_skipped(weights["state_dict"])
    assert len(skipped) == 8 and all(".layer.conv" in k for k in skipped)  # 2 convs x 4 stages
    ours = encoder.backbone_state_dict()
    for key, value in model.swinViT.state_dict().items():
        if monai_ssl_key(key) in skipped:
            assert torch.equal(value, init[key]), key          # left at SwinUNETR's initialisation
        else:
            assert torch.equal(value, ours[key]), key          # copied from our encoder


def test_file_keys_use_monai_ssl_mlp_names(tmp_path, tiny_config):
    encoder = build_encoder(tiny_config)
    _, weights = _export_both(tmp_path, encoder)
    keys = set(weights["state_dict"])
    assert "module.layers1.0.blocks.0.mlp.fc1.weight" in keys and "module.layers4.0.blocks.0.mlp.fc2.bias" in keys
    assert not any("linear1" in k or "linear2" in k or "mask_token" in k or "semantic_attention" in k for k in keys)
    assert len(keys) == len(encoder.backbone_state_dict())


def test_checkpoint_route_and_errors(tmp_path, capsys):
    vit = build_encoder({"arch": "vit", "vit_dim": 24, "vit_depth": 1, "vit_heads": 2, "vit_patch": 8, "img_size": 32})
    vit_file = export_encoder(vit, tmp_path / "vit.pt", model_config=vit.model_config, method="smart", step=0)
    assert main(["export", "--encoder", str(vit_file), "--format", "monai-ssl", "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "vit.pt" in err and "Swin" in err and not (tmp_path / "x.pt").exists()
    assert main(["export", "--encoder", str(tmp_path / "nope.pt"), "--format", "monai-ssl",
                 "--out", str(tmp_path / "x.pt")]) == 2
    assert "nope.pt" in capsys.readouterr().err


def test_paper_kwargs_are_the_documented_ones(paper_swin):
    assert swin_unetr_kwargs(paper_swin.model_config) == {
        "in_channels": 1, "feature_size": 48, "depths": (2, 2, 8, 2), "num_heads": (4, 4, 8, 16), "window_size": 4,
        "patch_size": 2, "use_v2": False, "use_flash_attention": True}


def test_format_smart_from_an_encoder_rewrites_it_unchanged(tmp_path, tiny_config):
    encoder = build_encoder(tiny_config)
    src = export_encoder(encoder, tmp_path / "a.pt", model_config=encoder.model_config, method="smit", step=9)
    assert main(["export", "--encoder", str(src), "--out", str(tmp_path / "b.pt")]) == 0   # --format smart default
    a, b = torch.load(src, weights_only=True), torch.load(tmp_path / "b.pt", weights_only=True)
    assert a.keys() == b.keys() and a["method"] == b["method"] == "smit" and b["step"] == 9
    assert all(torch.equal(v, b["backbone"][k]) for k, v in a["backbone"].items())
