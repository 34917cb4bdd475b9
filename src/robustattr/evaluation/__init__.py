"""Evaluation drivers: NA/AA (``evaluate_pgd``), IN/CO (``evaluate_attribution``) and the certified
top-k (``evaluate_certificate``) of a trained run;
``attribution_robustness_of`` evaluates any model on tensors or a DataLoader, per example.

Drivers own the loops over the test set, the result files in the run directory and the progress
bars; the algorithms they call (``attacks``) stay pure batched functions.
"""

from robustattr.evaluation.accuracy import PGD_RESULT_FILE, evaluate_pgd
from robustattr.evaluation.attribution_robustness import (
    ATTRIBUTION_EXAMPLES_FILE,
    ATTRIBUTION_RESULT_FILE,
    STRONG_EXAMPLES_FILE,
    STRONG_RESULT_FILE,
    evaluate_attribution,
)
from robustattr.evaluation.certify import CERTIFY_EXAMPLES_FILE, CERTIFY_RESULT_FILE, evaluate_certificate
from robustattr.evaluation.per_example import AttributionRobustness, attribution_robustness_of

__all__ = [
    "attribution_robustness_of",
    "AttributionRobustness",
    "evaluate_pgd",
    "evaluate_attribution",
    "evaluate_certificate",
    "CERTIFY_RESULT_FILE",
    "CERTIFY_EXAMPLES_FILE",
    "PGD_RESULT_FILE",
    "ATTRIBUTION_RESULT_FILE",
    "ATTRIBUTION_EXAMPLES_FILE",
    "STRONG_RESULT_FILE",
    "STRONG_EXAMPLES_FILE",
]
