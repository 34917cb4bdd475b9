"""robustattr: robust attribution regularization (Chen et al., NeurIPS 2019) in PyTorch.

Subpackages: ``data``, ``models``, ``attribution``, ``metrics``, ``attacks``, ``training``,
``evaluation``, ``reports``; ``config`` for the JSON schema; ``cli`` for the command line.
"""

__version__ = "0.1.0"
