"""Shared data generator for the benchmarks: FF++-like imbalance over 8 gender x race groups."""

import numpy as np

FFPP_COUNTS = np.array([2475, 25443, 1468, 4163, 8013, 31281, 1111, 2185])
RACES = np.array(["asian", "white", "black", "others"])


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.choice(8, n, p=FFPP_COUNTS / FFPP_COUNTS.sum())
    y = rng.integers(0, 2, n)
    shift = np.array([0.0, -0.1, 0.5, 0.2, 0.0, 0.0, 0.6, 0.4])[ids] * (y == 0)
    z = rng.normal(size=n) + 2.0 * y - 1.0 + shift
    p = 1.0 / (1.0 + np.exp(-z))
    gender = np.where(ids < 4, "male", "female")
    race = RACES[ids % 4]
    return y, p, gender, race
