"""Input builders shared by the op tests."""
import numpy as np


def distinct_values(rng, shape, margin=0.001):
    """float64 values of ``shape`` in about [-2, 2], pairwise at least 0.6 * spacing apart
    (spacing = min(0.05, 4 / size)) and at least ``margin`` away from 0: no ReLU kinks and no
    max-pool ties within a finite-difference step (1e-6)."""
    n = int(np.prod(shape))
    spacing = min(0.05, 4.0 / n)
    margin = min(margin, spacing / 4)
    grid = (np.arange(n) - n / 2 + 0.5) * spacing  # symmetric about 0, never 0 itself
    values = rng.permutation(grid) + rng.uniform(-0.2, 0.2, n) * spacing  # jitter keeps spacing >= 0.6 * spacing
    values[np.abs(values) < margin] += np.sign(values[np.abs(values) < margin]) * margin
    return values.reshape(shape)
