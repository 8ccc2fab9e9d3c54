"""Clear errors for the known traps and for bad arguments."""

from __future__ import annotations

import pytest
import torch

import rotalumis.autodiff as ad
from rotalumis.autodiff import AutodiffArgumentError, DifferentiationTrapError
from rotalumis.core.errors import RotalumisError

DT = torch.float64
X = torch.tensor([0.5, -1.0, 2.0], dtype=DT)
V = torch.ones(3, dtype=DT)

# (name, call) running each kind of transform on f
SCALAR_OPS = [
    ("grad", lambda f, x: ad.grad(f, x)),
    ("gradv", lambda f, x: ad.gradv(f, x, torch.ones_like(x))),
    ("hessian", lambda f, x: ad.hessian(f, x)),
    ("hvp", lambda f, x: ad.hvp(f, x, torch.ones_like(x))),
    ("laplacian", lambda f, x: ad.laplacian(f, x)),
    ("jacobian", lambda f, x: ad.jacobian(f, x)),
    ("vjp", lambda f, x: ad.vjp(f, x, torch.ones((), dtype=x.dtype))),
    ("pullback", lambda f, x: ad.pullback(f, x)(torch.ones((), dtype=x.dtype))),
    ("user vmap of grad", lambda f, x: torch.func.vmap(lambda y: ad.grad(f, y))(x[None])),
]
IDS = [name for name, _ in SCALAR_OPS]
CALLS = [call for _, call in SCALAR_OPS]


def test_error_hierarchy():
    assert issubclass(AutodiffArgumentError, RotalumisError)
    assert issubclass(AutodiffArgumentError, ValueError)
    assert issubclass(DifferentiationTrapError, RotalumisError)
    assert issubclass(DifferentiationTrapError, RuntimeError)
    assert issubclass(DifferentiationTrapError, ad.AutodiffError)


@pytest.mark.parametrize(
    "convert",
    [
        lambda t: t.item(),
        lambda t: float(t),
        lambda t: t.tolist(),
        lambda t: torch.as_tensor(t.numpy()).sum().item(),
    ],
    ids=["item", "float", "tolist", "numpy"],
)
@pytest.mark.parametrize("call", CALLS, ids=IDS)
def test_conversion_to_python_number_is_caught(call, convert):
    def f(x):
        scale = convert(x[0])
        return (x**2).sum() * (scale if isinstance(scale, float) else 1.0)

    with pytest.raises(DifferentiationTrapError, match=r"Python number.*detach"):
        call(f, X)


def test_conversion_caught_under_forward_mode_and_diff():
    with pytest.raises(DifferentiationTrapError, match=r"\.item\(\)"):
        ad.diff(lambda t: t * t.item(), torch.tensor(1.0, dtype=DT))
    with pytest.raises(DifferentiationTrapError, match=r"rotalumis\.autodiff\.jvp"):
        ad.jvp(lambda x: x * float(x.sum()), X, V)


def test_conversions_of_constants_and_detached_values_are_allowed():
    c = torch.tensor(3.0, dtype=DT)

    def f(x):
        return (x**2).sum() * c.item() + 0 * x.detach().sum().item()

    torch.testing.assert_close(ad.grad(f, X), 6 * X)
    torch.testing.assert_close(ad.jvp(f, X, V), 6 * X.sum())
    param = torch.nn.Parameter(torch.tensor(2.0, dtype=DT))
    torch.testing.assert_close(ad.grad(lambda x: (x * param.item()).sum(), X), 2 * V)


def test_trap_checks_can_be_turned_off():
    def f(x):
        return (x**2).sum() * x[0].item()

    true_grad = 2 * X * X[0]
    true_grad[0] += (X**2).sum()
    with ad.trap_checks(False):
        g = ad.grad(f, X)  # silently misses the dependency through .item()
    assert not torch.allclose(g, true_grad)
    with pytest.raises(DifferentiationTrapError):
        ad.grad(f, X)  # back on outside the block
    with ad.trap_checks(False), pytest.raises(DifferentiationTrapError, match="vmap"):
        # torch's own error under vmap is still translated
        torch.func.vmap(lambda y: ad.grad(f, y))(X[None])


@pytest.mark.parametrize(
    "call",
    [
        lambda f: ad.grad(f, X.clone()),
        lambda f: ad.gradv(f, X.clone(), V),
        lambda f: ad.hvp(f, X.clone(), V),
        lambda f: ad.hessian(f, X.clone()),
        lambda f: ad.laplacian(f, X.clone()),
        lambda f: ad.jacobian(f, X.clone()),
        lambda f: ad.jacobian(f, X.clone(), mode="forward"),
        lambda f: ad.diff(f, torch.tensor(1.0, dtype=DT)),
        lambda f: torch.func.vmap(lambda x: ad.jvp(f, x, V))(X.clone()[None]),
    ],
    ids=["grad", "gradv", "hvp", "hessian", "laplacian", "jac-rev", "jac-fwd", "diff", "vmap"],
)
def test_in_place_modification_of_the_input_is_caught(call):
    def f(x):
        x.mul_(2)
        return x.sum()

    with pytest.raises(DifferentiationTrapError, match="in place"):
        call(f)

    def g(x):
        x[...] = 0.0
        return x.sum()

    with pytest.raises(DifferentiationTrapError, match=r"in place \(item assignment"):
        call(g)

    def h(x):
        x += 1.0
        return x.sum()

    with pytest.raises(DifferentiationTrapError, match="in place"):
        call(h)


def test_in_place_is_stopped_before_it_changes_the_callers_tensors():
    x, v = X.clone(), V.clone()

    def f(y):
        y.mul_(2)
        return y.sum()

    with pytest.raises(DifferentiationTrapError, match=r"x\.mul_\(\.\.\.\) on its input x"):
        ad.jvp(f, x, v)
    with pytest.raises(DifferentiationTrapError, match=r"x\.mul_\(\.\.\.\) on its input x"):
        torch.func.vmap(lambda y, w: ad.jvp(f, y, w))(x[None], v[None])
    torch.testing.assert_close(x, X)
    torch.testing.assert_close(v, V)


def test_in_place_through_a_view_or_with_checks_off_is_still_caught_afterwards():
    def through_view(y):
        y.view(-1)[1:].zero_()
        return y.sum()

    def direct(y):
        y.mul_(2)
        return y.sum()

    with pytest.raises(DifferentiationTrapError, match="perhaps through a view"):
        ad.jvp(through_view, X.clone(), V.clone())
    with ad.trap_checks(False), pytest.raises(DifferentiationTrapError, match="in place"):
        ad.jvp(direct, X.clone(), V.clone())


def test_in_place_modification_of_a_captured_tensor_is_caught():
    buffer = torch.zeros(3, dtype=DT)

    def f(x):
        buffer.add_(x)
        return buffer.sum()

    with pytest.raises(DifferentiationTrapError, match=r"in place.*captured|captured.*in place"):
        ad.grad(f, X)


@pytest.mark.parametrize(
    "call",
    [
        lambda f: ad.hessian(f, X),
        lambda f: ad.laplacian(f, X),
        lambda f: ad.jacobian(lambda x: f(x) * x, X, mode="forward"),
        lambda f: ad.div(lambda x: f(x) * x, X),
        lambda f: torch.func.vmap(lambda x: ad.grad(f, x))(X[None]),
    ],
    ids=["hessian", "laplacian", "jacobian", "div", "user-vmap"],
)
def test_random_draws_under_vmap_are_explained(call):
    def f(x):
        return (x * torch.randn(3, dtype=DT)).sum() ** 2

    with pytest.raises(DifferentiationTrapError, match=r"random numbers.*outside f"):
        call(f)


def test_random_draws_outside_f_work():
    eps = torch.randn(3, dtype=DT, generator=torch.Generator().manual_seed(0))
    h = ad.hessian(lambda x: ((x * eps).sum()) ** 2, X)
    torch.testing.assert_close(h, 2 * torch.outer(eps, eps))


def test_data_dependent_branch_under_vmap_is_explained():
    def f(x):
        return x.sum() if x.sum() > 0 else -x.sum()

    torch.testing.assert_close(ad.grad(f, X), V)  # fine without vmap
    with pytest.raises(DifferentiationTrapError, match=r"torch\.where"):
        torch.func.vmap(lambda x: ad.grad(f, x))(torch.stack([X, -X]))


def test_unrelated_errors_of_f_propagate_unchanged():
    def f(x):
        raise RuntimeError("simulator exploded")

    with pytest.raises(RuntimeError, match="simulator exploded") as info:
        ad.grad(f, X)
    assert not isinstance(info.value, ad.AutodiffError)


def test_translated_errors_chain_the_torch_error():
    with pytest.raises(DifferentiationTrapError) as info:
        ad.hessian(lambda x: (x * torch.rand(3, dtype=DT)).sum(), X)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_nested_trap_is_attributed_to_the_inner_operation():
    def inner(x):
        return ad.grad(lambda y: (y * x).sum() * y[0].item(), x)

    with pytest.raises(DifferentiationTrapError, match=r"rotalumis\.autodiff\.grad:"):
        ad.hessian(lambda x: inner(x).sum(), X)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: ad.diff(torch.sin, X), r"diff: x must be a scalar.*\(3,\)"),
        (lambda: ad.diff2(torch.sin, X), r"diff2: x must be a scalar"),
        (lambda: ad.diffn(torch.sin, X, 2), r"diffn: x must be a scalar"),
        (lambda: ad.diffn(torch.sin, 1.0, -1), r"diffn: n must be a non-negative int"),
        (lambda: ad.diffn(torch.sin, 1.0, 1.5), r"n must be a non-negative int"),
        (lambda: ad.diffn(torch.sin, 1.0, True), r"n must be a non-negative int"),
        (lambda: ad.curl(lambda p: p, X[:2]), r"curl: x must be a 3-vector.*\(2,\)"),
        (lambda: ad.curl(lambda p: p[:2], X), r"curl: f must map x to a vector field"),
        (lambda: ad.curl_and_div(lambda p: p, torch.ones(4, dtype=DT)), r"3-vector"),
        (lambda: ad.div(lambda p: p.sum(), X), r"div: f must map x .*shape \(\)"),
        (lambda: ad.grad(lambda x: x * 2, X), r"grad: f must return a scalar.*\(3,\)"),
        (lambda: ad.hessian(lambda x: x * 2, X), r"hessian: f must return a scalar"),
        (lambda: ad.laplacian(lambda x: x, X), r"laplacian: f must return a scalar"),
        (lambda: ad.gradv(lambda x: x.sum(), X, V[:2]), r"gradv: v must have the shape of x"),
        (lambda: ad.hvp(lambda x: x.sum(), X, V[:2]), r"hvp: v must have the shape of x"),
        (lambda: ad.jvp(lambda x: x, X, [1.0, 2.0, 3.0]), r"jvp: v must be a torch\.Tensor"),
        (lambda: ad.vjp(lambda x: x, X, V[:2]), r"vjp: u must have the shape of f\(x\) \(3,\)"),
        (lambda: ad.pullback(lambda x: x, X)(V[:1]), r"Pullback: u must have shape \(3,\)"),
        (lambda: ad.pullback(lambda x: x, X).batched(V), r"us must have shape \(k,\) \+ \(3,\)"),
        (lambda: ad.grad(lambda x: x.sum(), torch.tensor([1, 2])), r"x must be a floating"),
        (lambda: ad.grad(lambda x: x.sum(), [1.0, 2.0]), r"x must be a torch\.Tensor or"),
        (lambda: ad.grad("not a function", X), r"grad: f must be callable"),
        (lambda: ad.grad(lambda x: 1.0, X), r"f must return a torch\.Tensor, got float"),
        (lambda: ad.jacobian(lambda x: x, X, mode="sideways"), r"mode must be 'auto'"),
        (lambda: ad.laplacian(lambda x: x.sum(), X, chunk_size=0), r"chunk_size must be"),
        (lambda: ad.div(lambda x: x, X, chunk_size=2.5), r"chunk_size must be"),
    ],
)
def test_bad_arguments_name_the_culprit(call, pattern):
    with pytest.raises(AutodiffArgumentError, match=pattern):
        call()
