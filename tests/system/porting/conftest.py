"""The original ``leads==0.9.7`` venv (made by the interop tier's fixture) for the porting tests."""

from system.interop.conftest import original_python

__all__ = ["original_python"]
