"""T5's inverse square root schedule."""

import numpy as np
import pytest

from t5lab.errors import UserError
from t5lab.train.optimizers import rsqrt_schedule


def test_constant_then_inverse_square_root_like_t5():
    schedule = rsqrt_schedule(base_learning_rate=1.0, warmup_steps=10_000)
    np.testing.assert_allclose(
        [float(schedule(s)) for s in (0, 5_000, 10_000, 40_000, 1_000_000)],
        [0.01, 0.01, 0.01, 0.005, 0.001],
        rtol=1e-6,
    )


def test_linear_warmup_reaches_the_plateau():
    schedule = rsqrt_schedule(base_learning_rate=1.0, warmup_steps=100, linear_warmup=True)
    assert float(schedule(0)) == pytest.approx(0.001)
    assert float(schedule(49)) == pytest.approx(0.05)
    assert float(schedule(99)) == pytest.approx(0.1)
    assert float(schedule(400)) == pytest.approx(0.05)


def test_bad_warmup_is_a_user_error():
    with pytest.raises(UserError, match="warmup_steps"):
        rsqrt_schedule(warmup_steps=0)
