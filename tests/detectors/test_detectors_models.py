"""Models: Cadene-layout Xception weights, torchvision backbones, the registry, PG-FDD variants."""

from __future__ import annotations

import pytest
import torch

from detectors import ConfigError, WeightsError, create_model, list_models
from detectors.models import (
    Xception,
    adain,
    create_backbone,
    load_weights,
    load_xception_weights,
    model_options,
)
from detectors.models._layers import ClassifierHead


def _cadene_file(tmp_path, model: Xception):
    """A checkpoint in the layout of xception-b5690688.pth: 2-D pointwise weights, an fc head,
    no num_batches_tracked; values differ from the model's."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        value = torch.randn(value.shape, generator=gen) if value.is_floating_point() else value
        state[key] = value[:, :, 0, 0].clone() if "pointwise" in key else value
    state["fc.weight"] = torch.randn(1000, 2048, generator=gen)
    state["fc.bias"] = torch.randn(1000, generator=gen)
    path = tmp_path / "xception-b5690688.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def cadene(tmp_path_factory):
    model = Xception()
    path, state = _cadene_file(tmp_path_factory.mktemp("w"), model)
    return path, state


def test_xception_loads_a_cadene_layout_checkpoint_without_missing_keys(cadene):
    path, state = cadene
    model = Xception()
    report = load_xception_weights(model, str(path))
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.dropped) == ["fc.bias", "fc.weight"]
    n_pointwise = sum("pointwise" in k for k in state)
    assert len(report.reshaped) == n_pointwise == 34
    assert report.loaded == len(state) - 2 and len(report.sha256) == 64
    sd = model.state_dict()
    assert torch.equal(
        sd["block1.rep.0.pointwise.weight"],
        state["block1.rep.0.pointwise.weight"][:, :, None, None],
    )
    assert torch.equal(sd["bn4.running_var"], state["bn4.running_var"])
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2048, 2, 2)


def test_xception_parameter_names_follow_the_checkpoint_layout():
    keys = set(Xception().state_dict())
    for key in [
        "conv1.weight",
        "bn1.running_mean",
        "conv2.weight",
        "block1.rep.0.conv1.weight",
        "block1.rep.0.pointwise.weight",
        "block1.rep.1.weight",
        "block1.skip.weight",
        "block1.skipbn.bias",
        "block2.rep.1.pointwise.weight",
        "block4.rep.7.pointwise.weight",
        "block4.rep.8.running_var",
        "block12.rep.4.pointwise.weight",
        "block12.skip.weight",
        "conv3.conv1.weight",
        "conv3.pointwise.weight",
        "bn3.weight",
        "conv4.pointwise.weight",
        "bn4.bias",
    ]:
        assert key in keys, key
    assert "block4.skip.weight" not in keys  # identity skip in the middle flow
    assert Xception()(torch.randn(1, 3, 256, 256)).shape == (1, 2048, 8, 8)


def test_pgfdd_loads_the_imagenet_file_into_each_encoder(cadene):
    path, state = cadene
    model = create_model("pgfdd", backbone="xception", pretrained=str(path))
    for name in ("encoder_forgery", "encoder_content", "encoder_demographic"):
        sd = getattr(model, name).backbone.state_dict()
        assert torch.equal(sd["conv1.weight"], state["conv1.weight"])
        assert torch.equal(
            sd["conv4.pointwise.weight"], state["conv4.pointwise.weight"][:, :, None, None]
        )


def test_weights_loader_reports_and_refuses_what_does_not_fit(tmp_path):
    model = create_backbone("tiny_cnn")
    good = model.state_dict()
    partial = {k: v for k, v in good.items() if not k.startswith("stages.0.")}
    partial["extra.weight"] = torch.zeros(1)
    torch.save(partial, tmp_path / "partial.pt")
    with pytest.raises(
        WeightsError,
        match=r"does not fit TinyConvNet: missing 1 \['stages.0.weight'\], "
        r"unexpected 1 \['extra.weight'\]",
    ):
        load_weights(model, tmp_path / "partial.pt")
    report = load_weights(model, tmp_path / "partial.pt", strict=False)
    assert report.missing == ["stages.0.weight"] and report.unexpected == ["extra.weight"]
    wrong = dict(good)
    wrong["stages.0.weight"] = torch.zeros(1, 1, 1, 1)
    torch.save({"state_dict": {"module." + k: v for k, v in wrong.items()}}, tmp_path / "wrong.pt")
    with pytest.raises(
        WeightsError, match=r"wrong shape, e.g. stages.0.weight: file \(1, 1, 1, 1\)"
    ):
        load_weights(model, tmp_path / "wrong.pt")
    with pytest.raises(WeightsError, match="weights file not found"):
        load_weights(model, tmp_path / "nope.pt")


class _Pickled:
    pass


def test_weights_loader_never_unpickles_objects(tmp_path):
    torch.save({"w": _Pickled()}, tmp_path / "obj.pt")
    with pytest.raises(WeightsError, match="cannot read weights file"):
        load_weights(create_backbone("tiny_cnn"), tmp_path / "obj.pt")


@pytest.mark.parametrize("name, head", [("resnet50", "fc."), ("efficientnet_b3", "classifier.1.")])
def test_torchvision_backbones_load_a_local_torchvision_file(tmp_path, name, head):
    import torchvision

    reference = {
        "resnet50": torchvision.models.resnet50,
        "efficientnet_b3": torchvision.models.efficientnet_b3,
    }[name](weights=None)
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)
    backbone = create_backbone(name, pretrained=str(path))
    sd = backbone.state_dict()
    key = "body.conv1.weight" if name == "resnet50" else "body.features.0.0.weight"
    assert torch.equal(sd[key], reference.state_dict()[key[len("body.") :]])
    assert not any(k.startswith("body." + head) for k in sd)
    assert backbone(torch.randn(1, 3, 64, 64)).shape == (1, backbone.out_channels, 2, 2)


def test_registry_and_option_validation():
    assert {"pgfdd", "xception", "resnet50", "efficientnet_b3", "efficientnet_b4", "plain"} <= set(
        list_models()
    )
    with pytest.raises(ConfigError, match=r"unknown model 'ucf' \(known: "):
        create_model("ucf")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) lr for model 'pgfdd'"):
        create_model("pgfdd", lr=0.1)
    assert "backbone" not in model_options("xception") and "loss" in model_options("xception")
    with pytest.raises(ConfigError, match="option loss: expected one of ce, dag, daw"):
        create_model("plain", backbone="tiny_cnn", loss="focal")
    with pytest.raises(ConfigError, match="unknown backbone 'vgg'"):
        create_model("plain", backbone="vgg")
    with pytest.raises(ConfigError, match="variant: expected one of faithful, fixed"):
        create_model("pgfdd", backbone="tiny_cnn", variant="paper")


@pytest.mark.parametrize("name", ["xception", "resnet50", "efficientnet_b3", "efficientnet_b4"])
@pytest.mark.parametrize("loss", ["ce", "dag", "daw"])
def test_plain_detectors_follow_the_contract(name, loss):
    model = create_model(name, loss=loss)
    batch = {
        "image": torch.randn(4, 3, 64, 64),
        "label": torch.tensor([0, 0, 1, 1]),
        "group": torch.tensor([0, 5, 0, 7]),
    }
    out = model(batch)
    assert out["logits"].shape == (4, 2)
    losses = model.get_losses(batch, out)
    assert losses["overall"].ndim == 0 and losses["overall"].requires_grad


def _tiny_pgfdd(variant, seed=0):
    torch.manual_seed(seed)
    return create_model(
        "pgfdd", variant=variant, backbone="tiny_cnn", feature_dim=32, head_hidden=32
    )


def _pair_batch(n=3, size=64):
    torch.manual_seed(1)
    return {
        "image": torch.rand(2 * n, 3, size, size) * 2 - 1,
        "label": torch.tensor([0] * n + [1] * n),
        "label_specific": torch.tensor([0] * n + [1, 2, 1][:n]),
        "group": torch.tensor([0, 1, 5, 5, 1, 0][: 2 * n]),
    }


@pytest.mark.parametrize("variant", ["faithful", "fixed"])
def test_pgfdd_outputs_and_losses(variant):
    model = _tiny_pgfdd(variant)
    batch = _pair_batch()
    out = model(batch)
    assert (
        out["logits"].shape == (6, 2)
        and out["logits_specific"].shape == (6, 6)
        and out["logits_demographic"].shape == (6, 8)
    )
    assert set(out["reconstructions"]) == {
        "self_fake",
        "self_real",
        "cross_to_real",
        "cross_to_fake",
    }
    assert out["reconstructions"]["self_real"].shape == (3, 3, 64, 64)
    losses = model.get_losses(batch, out)
    assert set(losses) == {
        "overall",
        "shared",
        "specific",
        "reconstruction",
        "contrastive",
        "demographic",
        "fusion",
    }
    weights = {
        "shared": 1,
        "specific": 0.1,
        "reconstruction": 0.3,
        "contrastive": 0.05,
        "demographic": 0.1,
        "fusion": 1,
    }
    assert losses["overall"].item() == pytest.approx(
        sum(w * losses[k].item() for k, w in weights.items()), rel=1e-6
    )
    losses["overall"].backward()
    model.eval()
    inference = model(batch, inference=True)
    assert "reconstructions" not in inference and inference["logits"].shape == (6, 2)


def _demographic_influence(variant):
    model = _tiny_pgfdd(variant).eval()
    batch = _pair_batch()
    before = model(batch, inference=True)["logits"]
    with torch.no_grad():
        for p in model.encoder_demographic.parameters():
            p.add_(torch.randn_like(p))
    return (model(batch, inference=True)["logits"] - before).abs().max().item()


def test_faithful_fusion_hides_the_demographic_features_and_fixed_does_not():
    assert _demographic_influence("faithful") < 1e-5  # pool(AdaIN(D, F)) = pool(F): spec 1.8
    assert _demographic_influence("fixed") > 1e-3


def test_adain_takes_pattern_from_the_first_and_statistics_from_the_second_argument():
    torch.manual_seed(0)
    x, y = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4) * 3 + 1
    z = adain(x, y)
    assert torch.allclose(z.mean((2, 3)), y.mean((2, 3)), atol=1e-5)
    assert torch.allclose(z.flatten(2).std(-1), y.flatten(2).std(-1), rtol=1e-3)
    corr = torch.corrcoef(torch.stack([z[0, 0].flatten(), x[0, 0].flatten()]))[0, 1]
    assert corr > 0.999


def test_dropout_on_logits_in_faithful_heads_only():
    torch.manual_seed(0)
    faithful = ClassifierHead(8, 16, 4, dropout=0.5, dropout_on_logits=True).train()
    fixed = ClassifierHead(8, 16, 4, dropout=0.5, dropout_on_logits=False).train()
    x = torch.randn(64, 8, 2, 2)
    assert (faithful(x)[0] == 0).float().mean() > 0.3
    assert (fixed(x)[0] == 0).sum() == 0
    assert (
        _tiny_pgfdd("faithful").head_fused.dropout_on_logits
        and not _tiny_pgfdd("fixed").head_fused.dropout_on_logits
    )


def test_pgfdd_variant_switches_and_the_fused_block():
    faithful, fixed = _tiny_pgfdd("faithful"), _tiny_pgfdd("fixed")
    assert (faithful.fusion, faithful.content_code, faithful.overflow_guard) == (
        "adain",
        "adain",
        True,
    )
    assert (fixed.fusion, fixed.content_code, fixed.overflow_guard) == ("concat", "raw", False)
    assert not hasattr(faithful, "block_fused") and hasattr(fixed, "block_fused")
    mixed = create_model(
        "pgfdd",
        variant="faithful",
        backbone="tiny_cnn",
        feature_dim=32,
        head_hidden=32,
        fusion="concat",
    )
    assert mixed.fusion == "concat" and mixed.overflow_guard


def test_pgfdd_rejects_an_input_size_its_decoder_cannot_reconstruct():
    model = _tiny_pgfdd("faithful")
    batch = _pair_batch(size=80)
    with pytest.raises(ConfigError, match=r"reconstructs \(96, 96\) images from \(80, 80\) inputs"):
        model.get_losses(batch, model(batch))


def test_ldam_counts_reach_the_model():
    counts = [5, 50, 1, 9, 20, 80, 2, 7]
    model = create_model(
        "pgfdd", backbone="tiny_cnn", feature_dim=32, head_hidden=32, group_counts=counts
    )
    assert model.ldam.margins[2].item() == pytest.approx(0.5)
    assert model.ldam.margins[5].item() == pytest.approx(0.5 * (1 / 80) ** 0.25, rel=1e-6)


def test_pgfdd_losses_are_float32_under_bf16_autocast():
    """Issue 11: the forward pass may run in bf16, the losses must not (bf16 cross-entropy has a
    per-sample error of about 5e-3, five times the CVaR smoothing)."""
    import torch.nn.functional as F

    from detectors.models import create_model

    torch.manual_seed(0)
    model = create_model("pgfdd", backbone="tiny_cnn", feature_dim=32, head_hidden=16)
    batch = {
        "image": torch.randn(8, 3, 64, 64),
        "label": torch.tensor([0] * 4 + [1] * 4),
        "label_specific": torch.tensor([0] * 4 + [1, 2, 3, 1]),
        "group": torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]),
    }
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(batch)
    assert outputs["logits_shared"].dtype == torch.bfloat16  # the forward pass did run in bf16
    losses = model.get_losses(batch, outputs)
    assert all(v.dtype == torch.float32 for v in losses.values()), {
        k: v.dtype for k, v in losses.items()
    }
    expected = F.cross_entropy(outputs["logits_shared"].float(), batch["label"])
    assert losses["shared"].item() == expected.item()
    in_bf16 = F.cross_entropy(outputs["logits_shared"], batch["label"])
    assert in_bf16.dtype == torch.bfloat16  # what the former code computed
