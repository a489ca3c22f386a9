"""The digits task against scikit-learn's own arrays."""
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from lorakit.data import digits_task, half_indices, load_digit_rows


def _rows_with_labels(x: torch.Tensor, digit: torch.Tensor) -> np.ndarray:
    # One row per example: 64 pixels then the digit, sorted, so two multisets compare with ==.
    table = np.concatenate([x.reshape(len(x), -1).numpy(), digit.numpy()[:, None]], axis=1)
    return table[np.lexsort(table.T[::-1])]


def test_rows_are_sklearn_images_over_16():
    images, digit = load_digit_rows()
    bunch = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == torch.float32
    np.testing.assert_array_equal(images.numpy() * 16, bunch.images)
    np.testing.assert_array_equal(digit.numpy(), bunch.target)


def test_splits_partition_the_chosen_digits_and_relabel_them():
    classes = (5, 6, 7, 8, 9)
    task = digits_task(classes, val_fraction=0.2, test_fraction=0.2, seed=0)
    bunch = load_digits()
    keep = np.isin(bunch.target, classes)
    n = int(keep.sum())
    assert len(task.train) + len(task.val) + len(task.test) == n
    assert len(task.val) == round(0.2 * n) and len(task.test) == round(0.2 * n)
    assert task.num_labels == 5
    splits = (task.train, task.val, task.test)
    x = torch.cat([s.x for s in splits])
    digit = torch.tensor(classes)[torch.cat([s.y for s in splits])]  # label i means classes[i]
    expected = _rows_with_labels(torch.as_tensor(bunch.images[keep] / 16, dtype=torch.float32),
                                 torch.as_tensor(bunch.target[keep]))
    np.testing.assert_array_equal(_rows_with_labels(x, digit), expected)


def test_split_is_fixed_by_seed():
    a, b, c = digits_task((0, 1), seed=3), digits_task((0, 1), seed=3), digits_task((0, 1), seed=4)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)


@pytest.mark.parametrize("kwargs", [
    {"classes": (3,)}, {"classes": (1, 1)}, {"classes": (0, 10)}, {"classes": (0, 1.5)},
    {"classes": (0, 1), "val_fraction": 0.0}, {"classes": (0, 1), "test_fraction": 1.0},
    {"classes": (0, 1), "val_fraction": 0.5, "test_fraction": 0.5},
    {"classes": (0, 1), "val_fraction": 0.001},  # rounds to an empty validation split
])
def test_bad_input_is_a_value_error(kwargs):
    with pytest.raises(ValueError):
        digits_task(**kwargs)


def test_halves_are_disjoint_and_cover_every_image():
    a, b = half_indices(0), half_indices(1)
    assert len(a) == 898 and len(b) == 899
    assert torch.equal(torch.sort(torch.cat([a, b])).values, torch.arange(1797))


def test_half_task_holds_only_that_half_and_groups_labels():
    images, digit = load_digit_rows()
    mod5 = tuple(d % 5 for d in range(10))
    task = digits_task(range(10), labels=mod5, half=1, seed=0)
    assert task.num_labels == 5 and task.half == 1
    splits = (task.train, task.val, task.test)
    x, y = torch.cat([s.x for s in splits]), torch.cat([s.y for s in splits])
    rows = half_indices(1)
    # Same multiset of (image, label) as half 1 of sklearn's data with label = digit % 5.
    np.testing.assert_array_equal(_rows_with_labels(x, y), _rows_with_labels(images[rows], digit[rows] % 5))
    other = digits_task(range(10), half=0)
    assert not set(map(bytes, other.train.x.numpy())) & set(map(bytes, x.numpy()))  # no image in both halves


@pytest.mark.parametrize("kwargs", [
    {"half": 2}, {"half": True}, {"labels": (0, 1, 2)}, {"labels": (0,) * 10},
    {"labels": (0, 2) * 5}, {"labels": (0, 1.0) * 5},
])
def test_bad_half_or_labels_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        digits_task(range(10), **kwargs)
