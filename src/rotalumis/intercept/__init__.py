"""L1 intercept: run existing simulators, unmodified, under rotalumis.

A stochastic simulator written with :mod:`random`, :mod:`numpy.random` or torch already is a
probabilistic program; it only needs every call to its random number generator caught.
Inside :func:`intercept` each such call, made anywhere (the simulator, a helper, a
third-party library), becomes a ``sample`` site whose value the inference engine chooses
(prior draw, proposal, replay, ...), with the matching distribution, an address that follows
the simulator's call stack into library frames, and the engine's value returned to the
simulator exactly. Outside a model execution the calls run their original implementation.

What is intercepted, and how each call is recorded (details in :mod:`._random_patch`,
:mod:`._numpy_patch` and :mod:`._numpy_specs`):

* ``random`` module functions and every ``random.Random`` instance: ``random``,
  ``uniform``, ``gauss``/``normalvariate``, ``lognormvariate``, ``expovariate``,
  ``gammavariate``, ``betavariate``, ``weibullvariate``, ``choices`` map to the matching
  distribution; ``choice``/``randrange``/``randint``/``shuffle``/``sample`` to one
  ``Categorical`` per internal index draw; ``getrandbits``/``randbytes`` to a vector of
  fair bits (``Bernoulli(0.5)``); ``triangular``, ``paretovariate``, ``vonmisesvariate``
  (no mapping) to their underlying ``random()`` uniforms. ``SystemRandom`` is left alone.
* ``numpy.random`` module functions, ``RandomState`` and ``Generator`` instances:
  ``random``/``rand``/``random_sample``, ``uniform``, ``normal``/``standard_normal``/
  ``randn``, ``exponential``, ``gamma``, ``beta``, ``lognormal``, ``weibull``, ``poisson``,
  ``binomial``, ``integers``/``randint`` and ``choice`` with replacement map to the matching
  distribution, one site per call (vector-valued for ``size=`` or array parameters); every
  other method (``permutation``, ``shuffle``, ``vonmises``, ``multivariate_normal``,
  ``bytes``, ``BitGenerator.random_raw``, ...) is recorded as one ``Uniform(0, 1)`` seed of
  a fresh bit stream on which NumPy's own implementation runs.

* ``torch`` functions ``rand``, ``randn``, ``rand_like``, ``randn_like``, ``randint``,
  ``randint_like``, ``normal``, ``bernoulli``, ``poisson``, ``multinomial`` (with
  replacement, or one draw), ``_standard_gamma`` and ``Tensor`` methods ``normal_``,
  ``uniform_``, ``exponential_``, ``log_normal_``, ``bernoulli_``, ``bernoulli``,
  ``multinomial`` map to the matching distribution (so ``torch.distributions`` and
  ``torch.nn.init`` are covered); ``randperm``, ``binomial``, ``_sample_dirichlet``,
  ``Tensor.random_``/``cauchy_``/``geometric_`` are recorded as one seed of a substitute
  ``torch.Generator`` (details in :mod:`._torch_patch` and :mod:`._torch_specs`).

Nothing that goes through these calls escapes the engine. What cannot be intercepted is
randomness drawn without a Python-level call: C code reading a NumPy bit generator
(``scipy.stats.sampling``, ``ctypes``/``cffi`` users), torch's C++ kernels (dropout),
threads started inside the block. Such escapes are detected: after a model's first
intercepted execution it runs twice more with one seed, and a difference raises an
:class:`EscapedRandomnessWarning` naming it (``check_escapes=False`` turns this off; see
``docs/interception.md``). A call implemented through other calls (``gauss`` through
``random()``, ``Generator.permutation`` through ``shuffle``) is recorded once. The engine's
own generators (:class:`rotalumis.core.RNG`) are immune.

Everything is restored when the last ``with`` block exits, also on exceptions; nesting is
fine; threads intercept independently (each only inside its own block).

Example — the simulator is untouched; the model adds a prior and the observation::

    import numpy as np
    from rotalumis.core import Normal, model, observe, sample
    from rotalumis.intercept import intercept

    def simulate(theta):                  # unmodified simulator code
        return theta + np.random.normal(0.0, 1.0)

    @model
    def inverse():
        theta = sample(Normal(0.0, 1.0), name="theta")
        with intercept():
            out = simulate(theta)
        observe(Normal(out, 0.1), name="y")
        return theta

    posterior = inverse.posterior(2000, engine="rmh", observe={"y": 1.5}, seed=0)

or, equivalently, ``InterceptedModel(simulate, priors={"theta": Normal(0.0, 1.0)},
observe={"y": lambda out: Normal(out, 0.1)})``.

A simulator that draws its own parameters and its own measurement noise needs no prior or
likelihood at all: name its draws by call-site patterns, and declare the noise draw observed
so that it is the likelihood of the data::

    def draw_parameter():                 # unmodified simulator code
        return np.random.normal(0.0, 1.0)

    def measure(x):
        return np.random.normal(x, 0.1)

    def simulate():
        theta = draw_parameter()
        return measure(theta + np.random.normal(0.0, 1.0))

    inverse = InterceptedModel(
        simulate, names={"theta": "draw_parameter:"}, observed={"y": "measure:"}
    )
    posterior = inverse.posterior(2000, engine="is", observe={"y": 1.5}, seed=0)

The examples ``examples/tau_decay.py`` (RMH and inference compilation on a calorimeter
image), ``examples/sir_epidemic.py`` (agent-based epidemic) and ``examples/ciw_queue.py``
(the PyPI queueing library ciw, unmodified) show complete uses.
"""

from rotalumis.core.errors import EscapedRandomnessWarning

from .context import Intercept, intercept, is_installed
from .model import InterceptedModel

__all__ = ["EscapedRandomnessWarning", "Intercept", "InterceptedModel", "intercept", "is_installed"]
