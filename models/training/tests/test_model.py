"""Network shapes, parameter/FLOP counting and the exportable adaptive pooling."""

import pytest
import torch
import torch.nn.functional as F

from foramen_train.model import ModelConfig, PPLiteSeg, adaptive_avg_pool, count_parameters, estimate_flops


def tiny(num_classes=4, width=64, height=64, base=8, aux=False):
    return ModelConfig(
        num_classes=num_classes,
        width=width,
        height=height,
        base_channels=base,
        stage_blocks=[1, 1, 1],
        decoder_channels=[8, 16, 32],
        sppm_channels=16,
        head_channels=16,
        aux_heads=aux,
    )


@pytest.mark.parametrize("base", [8, 16])
def test_forward_shape_at_two_widths(base):
    model = PPLiteSeg(tiny(num_classes=5, base=base)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 5, 64, 64)


def test_forward_non_square_and_aux():
    model = PPLiteSeg(tiny(width=384, height=224, aux=True))
    x = torch.randn(2, 3, 224, 384)
    main, aux = model.forward_with_aux(x)
    assert main.shape == (2, 4, 224, 384)
    assert [a.shape for a in aux] == [(2, 4, 224, 384)] * 2
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), model.forward_with_aux(x)[0])


def test_width_changes_params_and_flops():
    small, big = PPLiteSeg(tiny(base=8)), PPLiteSeg(tiny(base=16))
    assert 0 < count_parameters(small) < count_parameters(big)
    assert 0 < estimate_flops(small, 64, 64) < estimate_flops(big, 64, 64)
    # all but the pooled context branches scale with the pixel count
    assert estimate_flops(small, 128, 64) == pytest.approx(2 * estimate_flops(small, 64, 64), rel=0.03)


def test_params_exclude_aux_heads():
    with_aux, without = PPLiteSeg(tiny(aux=True)), PPLiteSeg(tiny(aux=False))
    assert count_parameters(with_aux) == count_parameters(without)
    assert sum(p.numel() for p in with_aux.parameters()) > count_parameters(with_aux)


def test_flops_of_a_single_conv():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False))
    assert estimate_flops(conv, 10, 6) == 2 * (8 * 6 * 10) * 3 * 3 * 3


@pytest.mark.parametrize("size", [(7, 12), (8, 8), (2, 3), (1, 1)])
@pytest.mark.parametrize("bins", [1, 2, 4])
def test_adaptive_pool_matches_pytorch(size, bins):
    x = torch.randn(2, 3, *size)
    assert torch.allclose(adaptive_avg_pool(x, bins), F.adaptive_avg_pool2d(x, bins), atol=1e-6)


@pytest.mark.parametrize(
    "field,value", [("width", 100), ("base_channels", 7), ("stage_blocks", [1, 1]), ("decoder_channels", [8, 0, 8])]
)
def test_invalid_config_names_field(field, value):
    cfg = tiny()
    setattr(cfg, field, value)
    with pytest.raises(ValueError, match=f"model.{field}"):
        PPLiteSeg(cfg)


def test_detail_head_runs_at_stride_4_and_adds_little():
    plain = tiny(width=64, height=64)
    detail = tiny(width=64, height=64)
    detail.detail_channels = 8
    a, b = PPLiteSeg(plain).eval(), PPLiteSeg(detail).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert b(x).shape == (2, 4, 64, 64)
        top, _, _ = b._decode(x)
        top_plain, _, _ = a._decode(x)
    assert top.shape[-2:] == (16, 16) and top_plain.shape[-2:] == (8, 8)
    assert count_parameters(a) < count_parameters(b) < 1.2 * count_parameters(a)
    assert estimate_flops(a, 64, 64) < estimate_flops(b, 64, 64)


def test_negative_detail_channels_is_named():
    cfg = tiny()
    cfg.detail_channels = -1
    with pytest.raises(ValueError, match="model.detail_channels"):
        PPLiteSeg(cfg)


def test_fpn_decoder_shapes_aux_and_width():
    cfg = tiny(width=96, height=64, aux=True)
    cfg.decoder = "fpn"
    cfg.fpn_channels = 12
    model = PPLiteSeg(cfg)
    x = torch.randn(2, 3, 64, 96)
    main, aux = model.forward_with_aux(x)
    assert main.shape == (2, 4, 64, 96) and [a.shape for a in aux] == [(2, 4, 64, 96)] * 2
    top, d16, d32 = model._decode(x)
    assert [t.shape[1:] for t in (top, d16, d32)] == [(12, 8, 12), (12, 4, 6), (12, 2, 3)]
    assert model.sppm is None and not any(k.startswith(("sppm", "fuse")) for k in model.state_dict())
    wider = tiny(width=96, height=64)
    wider.decoder, wider.fpn_channels = "fpn", 24
    assert count_parameters(PPLiteSeg(cfg)) < count_parameters(PPLiteSeg(wider))


def test_unknown_decoder_is_named():
    cfg = tiny()
    cfg.decoder = "unet"
    with pytest.raises(ValueError, match="model.decoder: 'unet'"):
        PPLiteSeg(cfg)


def test_head_dropout_acts_in_training_only_and_keeps_the_weights_keys():
    cfg = tiny(width=96, height=64, aux=True)
    plain = PPLiteSeg(cfg)
    cfg_drop = tiny(width=96, height=64, aux=True)
    cfg_drop.head_dropout = 0.5
    dropping = PPLiteSeg(cfg_drop)
    assert dropping.state_dict().keys() == plain.state_dict().keys()
    dropping.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 96)
    plain.eval(), dropping.eval()
    with torch.no_grad():
        assert torch.equal(plain(x), dropping(x))
        dropping.train()
        assert not torch.allclose(dropping(x), dropping(x))
    cfg_drop.head_dropout = 1.0
    with pytest.raises(ValueError, match="model.head_dropout"):
        PPLiteSeg(cfg_drop)
