"""SAM: rho=0 is the base step, the ascent has norm rho, BN statistics frozen in the second pass,
momentum survives a state_dict round trip, closure API, fp16 refusal, bf16 autocast."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from detectors import ConfigError, SAM, frozen_bn_stats
from detectors.config import load_config


def _model(seed=0, momentum=0.1):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(5, 8), nn.BatchNorm1d(8, momentum=momentum), nn.ReLU(), nn.Linear(8, 2)
    )


def _data(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 5, generator=g), torch.randint(0, 2, (16,), generator=g)


def _loss(model, x, y):
    return nn.functional.cross_entropy(model(x), y)


def _sam_step(model, opt, x, y):
    _loss(model, x, y).backward()
    opt.first_step(zero_grad=True)
    with frozen_bn_stats(model):
        _loss(model, x, y).backward()
    opt.second_step(zero_grad=True)


def test_rho_zero_equals_the_base_optimizer_step():
    x, y = _data()
    a, b = _model(), _model()
    opt_a = SAM(torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-3), rho=0.0)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-3)
    for _ in range(3):
        _sam_step(a, opt_a, x, y)
        _loss(b, x, y).backward()
        opt_b.step()
        opt_b.zero_grad()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_perturbation_has_norm_rho_and_second_step_uses_the_perturbed_gradient():
    x, y = _data()
    model = _model()
    rho = 0.05
    opt = SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=rho)
    w0 = [p.detach().clone() for p in model.parameters()]
    _loss(model, x, y).backward()
    opt.first_step(zero_grad=True)
    e = torch.cat([(p.detach() - w).flatten() for p, w in zip(model.parameters(), w0)])
    assert e.norm().item() == pytest.approx(rho, rel=1e-5)
    with frozen_bn_stats(model):
        _loss(model, x, y).backward()
    g_perturbed = [p.grad.detach().clone() for p in model.parameters()]
    opt.second_step(zero_grad=True)
    for p, w, g in zip(model.parameters(), w0, g_perturbed):  # w <- w - lr * grad L(w + e)
        assert torch.allclose(p, w - 0.1 * g, atol=1e-7)


def test_adaptive_perturbation_scales_with_weights_squared():
    x, y = _data()
    model = _model()
    opt = SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.5, adaptive=True)
    w0 = [p.detach().clone() for p in model.parameters()]
    _loss(model, x, y).backward()
    grads = [p.grad.detach().clone() for p in model.parameters()]
    opt.first_step()
    norm = torch.stack([(w.abs() * g).norm() for w, g in zip(w0, grads)]).norm()
    for p, w, g in zip(model.parameters(), w0, grads):
        assert torch.allclose(p - w, 0.5 * w**2 * g / norm, atol=1e-7)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_bn_running_stats_are_unchanged_by_the_second_pass(momentum):
    x, y = _data()
    model = _model(momentum=momentum)
    opt = SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.05)
    bn = model[1]
    _loss(model, x, y).backward()
    after_first = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    opt.first_step(zero_grad=True)
    with frozen_bn_stats(model):
        out = model(x)
        _loss(model, x, y).backward()
    assert torch.equal(bn.running_mean, after_first[0]) and torch.equal(
        bn.running_var, after_first[1]
    )
    assert torch.equal(bn.num_batches_tracked, after_first[2])
    # batch statistics are still used to normalise in the second pass
    h = model[0](x)
    normalised = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + bn.eps)
    assert torch.allclose(out, model[3](torch.relu(normalised * bn.weight + bn.bias)), atol=1e-5)
    opt.second_step()
    assert bn.track_running_stats  # restored
    model(x)
    assert not torch.equal(bn.running_mean, after_first[0])  # updating again outside the block


def test_state_dict_round_trip_keeps_the_base_optimizers_momentum():
    x, y = _data()
    model = _model()
    opt = SAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05)
    _sam_step(model, opt, x, y)
    state = opt.state_dict()
    bufs = [s["momentum_buffer"] for s in state["base"]["state"].values()]
    assert len(bufs) == len(list(model.parameters())) and all(b.abs().sum() > 0 for b in bufs)

    clone = copy.deepcopy(model)
    opt2 = SAM(torch.optim.SGD(clone.parameters(), lr=0.1, momentum=0.9), rho=0.05)
    opt2.load_state_dict(copy.deepcopy(state))
    _sam_step(model, opt, x, y)
    _sam_step(clone, opt2, x, y)
    for p, q in zip(model.parameters(), clone.parameters()):
        assert torch.equal(p, q)  # would differ if the momentum had been lost
    fresh = copy.deepcopy(clone)
    _sam_step(fresh, SAM(torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9), rho=0.05), x, y)
    _sam_step(clone, opt2, x, y)
    assert not all(torch.equal(p, q) for p, q in zip(fresh.parameters(), clone.parameters()))


def test_step_with_closure_equals_first_and_second_step():
    x, y = _data()
    a, b = _model(), _model()
    opt_a = SAM(torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9), rho=0.05)
    opt_b = SAM(torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9), rho=0.05)
    _sam_step(a, opt_a, x, y)

    def closure():
        with frozen_bn_stats(b):
            loss = _loss(b, x, y)
            loss.backward()
        return loss

    _loss(b, x, y).backward()
    opt_b.step(closure)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    with pytest.raises(ValueError, match="closure"):
        opt_b.step()


def test_scheduler_on_the_base_optimizer_moves_the_shared_learning_rate():
    model = _model()
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    opt = SAM(base, rho=0.05)
    sched = torch.optim.lr_scheduler.StepLR(base, step_size=1, gamma=0.5)
    x, y = _data()
    _sam_step(model, opt, x, y)
    sched.step()
    assert (
        opt.param_groups[0]["lr"] == pytest.approx(0.05) and opt.param_groups is base.param_groups
    )


def test_fp16_with_sam_is_refused_with_a_clear_message():
    with pytest.raises(
        ConfigError,
        match="train.amp=fp16 cannot be combined with optim.sam=true.*use train.amp=bf16",
    ):
        load_config("tiny", ["train.amp=fp16"])
    assert load_config("tiny", ["train.amp=fp16", "optim.sam=false"])["train"]["amp"] == "fp16"


def test_bf16_autocast_sam_step_runs_on_cpu():
    from detectors._engine import sam_step
    from detectors.models import create_model

    torch.manual_seed(0)
    model = create_model("plain", backbone="tiny_cnn")
    opt = SAM(torch.optim.SGD(model.parameters(), lr=0.01), rho=0.05)
    batch = {
        "image": torch.randn(4, 3, 64, 64),
        "label": torch.tensor([0, 0, 1, 1]),
        "group": torch.tensor([0, 1, 0, 1]),
    }
    before = [p.detach().clone() for p in model.parameters()]
    losses = sam_step(model, batch, opt, amp="bf16", device=torch.device("cpu"))
    assert torch.isfinite(losses["overall"]) and losses["overall"].dtype == torch.float32
    assert any(not torch.equal(p, b) for p, b in zip(model.parameters(), before))
