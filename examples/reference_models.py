"""The reference models with exact posteriors, exposed for the command line:

rotalumis run examples/reference_models.py:branching -e lmh -n 20000 --observe obs=5
rotalumis run examples/reference_models.py:mixture -e rmh -n 20000 --observe obs=0.5
rotalumis run examples/reference_models.py:marsaglia -e lmh -n 20000 -o obs0=8 -o obs1=9
rotalumis run examples/reference_models.py:hmm -e is -n 50000 -o obs0=0.9 -o obs1=0.8 ...
"""

from rotalumis.models import (
    Branching,
    GaussianMixture,
    HiddenMarkovModel,
    MarsagliaUnknownMean,
    UnknownMean,
)

unknown_mean = UnknownMean()
marsaglia = MarsagliaUnknownMean()
mixture = GaussianMixture()
hmm = HiddenMarkovModel()
branching = Branching()
