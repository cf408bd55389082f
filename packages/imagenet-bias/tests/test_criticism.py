"""MMD-critic: the fast greedy equals the naive greedy, is near the brute-force optimum, and
finds one prototype per mode of a planted mixture."""

import itertools

import numpy as np
import torch

from dldiy_imagenet_bias.criticism import (
    attribute_bias,
    brute_force_criticisms,
    brute_force_prototypes,
    criticize,
    objective,
    rbf_kernel,
    select_criticisms,
    select_prototypes,
)


def naive_greedy(K, m):
    chosen = []
    for _ in range(m):
        cands = [i for i in range(K.shape[0]) if i not in chosen]
        chosen.append(max(cands, key=lambda i: objective(K, chosen + [i])))
    return chosen


def test_fast_greedy_equals_naive_greedy():
    for seed in range(5):
        x = torch.randn(30, 4, generator=torch.Generator().manual_seed(seed))
        K = rbf_kernel(x)
        assert select_prototypes(K, 6) == naive_greedy(K, 6)


def test_greedy_is_close_to_brute_force_on_small_sets():
    for seed in range(6):
        x = torch.randn(11, 3, generator=torch.Generator().manual_seed(seed))
        K = rbf_kernel(x)
        for m in (1, 2, 3):
            greedy, best = select_prototypes(K, m), brute_force_prototypes(K, m)
            assert objective(K, greedy) <= objective(K, best) + 1e-12
            # Kim et al.'s (1 - 1/e) guarantee of greedy for a monotone submodular objective
            assert objective(K, greedy) >= (1 - 1 / np.e) * objective(K, best)
        # one prototype: greedy is exact (the point nearest the kernel mean)
        assert select_prototypes(K, 1) == brute_force_prototypes(K, 1)


def test_one_prototype_per_mode_of_a_planted_mixture():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    sizes = [40, 25, 20, 15]
    x = np.concatenate([c + 0.5 * rng.normal(size=(n, 2)) for c, n in zip(centres, sizes,
                                                                          strict=True)])
    mode = np.repeat(np.arange(4), sizes)
    protos, crits = criticize(torch.tensor(x), 4, 2)
    assert sorted(mode[protos]) == [0, 1, 2, 3]
    # four equal modes and a small fifth one the four prototypes leave out: the witness
    # function is largest there, so the criticism comes from it
    x2 = np.concatenate([c + 0.5 * rng.normal(size=(25, 2)) for c in centres]
                        + [[20.0, 20.0] + 0.5 * rng.normal(size=(8, 2))])
    protos, crits = criticize(torch.tensor(x2), 4, 1, gamma=0.05)  # modes ~ flat, apart
    assert sorted(np.repeat(np.arange(5), [25] * 4 + [8])[protos]) == [0, 1, 2, 3]
    assert crits[0] >= 100, crits


def test_vectorised_criticisms_equal_the_direct_log_det():
    for seed in range(4):
        x = torch.randn(25, 3, generator=torch.Generator().manual_seed(seed))
        K = rbf_kernel(x)
        protos = select_prototypes(K, 3)
        assert select_criticisms(K, protos, 4) == brute_force_criticisms(K, protos, 4)


def test_objective_is_minus_mmd_up_to_a_constant():
    x = torch.randn(12, 3, generator=torch.Generator().manual_seed(1))
    K = rbf_kernel(x)
    for s in itertools.islice(itertools.combinations(range(12), 3), 20):
        s = list(s)
        mmd2 = K.mean() - 2 * K[:, s].mean() + K[s][:, s].mean()
        assert abs(objective(K, s) - (K.mean() - mmd2)) < 1e-9


def test_attribute_bias_reports_the_gap():
    attrs = np.array([[1, 0.2], [1, 0.4], [0, 0.6], [0, 0.8]])
    rows = attribute_bias(attrs, [0, 1], ["white", "sat"])
    assert rows[0]["class_mean"] == 0.5 and rows[0]["prototype_mean"] == 1.0
    assert abs(rows[1]["gap"] - (0.3 - 0.5)) < 1e-12
    # 2 of 4 picked: the 6 pairs give white-gaps 0.5 (twice) or 0 (four times)
    assert abs(rows[0]["p_random"] - 2 / 6) < 0.03


def test_measured_attributes():
    from dldiy_imagenet_bias.criticism import image_attributes

    img = torch.full((2, 3, 10, 10), 255, dtype=torch.uint8)
    img[0, :, :5, :] = torch.tensor([200, 0, 0], dtype=torch.uint8).view(3, 1, 1)  # red half
    img[1, :, :2, :] = 60  # a grey stripe
    a, names = image_attributes(img)
    assert names[0] == "white background share"
    assert a[0, 0] == 0.5 and a[1, 0] == 0.8
    assert abs(a[0, 1] - 1.0) < 1e-6 and a[0, 3] == 0  # saturated foreground
    assert a[1, 1] == 0 and a[1, 3] == 1  # grey foreground
