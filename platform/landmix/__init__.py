"""landmix: generate, adapt and mix synthetic and real face images; train and compare landmark detectors.

The package is a library with no side effects at import; `landmix ...` (cli.py) and jobs/*.py are
thin entry points over it.
"""

__version__ = "0.1.0"
