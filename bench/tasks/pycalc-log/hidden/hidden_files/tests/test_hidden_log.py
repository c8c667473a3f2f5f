import pytest

from pycalc import log


def test_log_refuses():
    assert log(8, 2) == 3
    for a, b in [(-1, 2), (0, 2), (8, 1), (8, -2)]:
        with pytest.raises(ValueError):
            log(a, b)
