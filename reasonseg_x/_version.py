"""The package version, in its own module so that modules inside the package never import names
from ``reasonseg_x/__init__.py`` (docs/architecture.md); hatch reads it from here too."""

__version__ = "0.1.0"
