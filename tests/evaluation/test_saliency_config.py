"""The config keys that choose the saliency method and the attack surrogate."""

import pytest

from robustattr.config import load_config
from robustattr.errors import UserInputError
from robustattr.evaluation._common import saliency_method


def test_config_builds_the_saliency_method_in_pixel_units():
    cfg = load_config(None, base={"dataset": "gtsrb", "saliency_type": "smoothgrad", "smoothgrad_noise": 0.1,
                                  "smoothgrad_samples": 8, "random_seed": 3})
    method = saliency_method(cfg, (0.0, 255.0))
    assert (method.kind, method.samples, method.sigma, method.seed) == ("smoothgrad", 8, pytest.approx(25.5), 3)
    assert method.points_per_example == 8
    ig = saliency_method(load_config(None, base={"dataset": "mnist", "ig_baseline": 0.5, "num_IG_steps": 7}), (0, 1))
    assert (ig.kind, ig.baseline, ig.points_per_example) == ("ig", 0.5, 7)


@pytest.mark.parametrize("key,value,match", [
    ("saliency_type", "smooth", r"'saliency_type' = \"smooth\".*input_x_gradient, smoothgrad.*did you mean 'smoothgrad'"),
    ("attribution_attack_surrogate", "relu", r"'attribution_attack_surrogate' = \"relu\".*softplus, none"),
    ("smoothgrad_noise", 0, r"'smoothgrad_noise' = 0.*must be > 0"),
])
def test_bad_values_name_the_key(key, value, match):
    with pytest.raises(UserInputError, match=match):
        load_config(None, base={"dataset": "mnist", key: value})
