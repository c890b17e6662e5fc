"""Single source of the package version (read by hatchling and ``theorylab.__version__``)."""

__version__ = "0.1.0"
