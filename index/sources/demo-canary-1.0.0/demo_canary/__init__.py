"""Security-test canary: importing this package leaves a marker (connector ``demo.canary.v1``).

If ``$MODELMESH_CANARY_PATH`` is set, importing the package appends one line holding
its package name as imported (e.g. ``_mmpkg_demo_canary_1_0_0.demo_canary``) to that
file. Tests publish this package tampered, unsigned or otherwise unverifiable and then
assert the file never appears: proof that no code from such a package ran.
"""

from __future__ import annotations

# First import of the package, so the marker is left before anything else can fail;
# any import of any module of this package runs this file, hence this module, first.
from ._marker import CANARY_ENV_VAR
from .canary import Canary

__all__ = ["CANARY_ENV_VAR", "Canary"]
