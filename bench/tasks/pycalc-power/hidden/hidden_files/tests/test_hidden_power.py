from pycalc import power


def test_power_edges():
    assert power(2, 10) == 1024
    assert power(3, 0) == 1
    assert power(2, -1) == 0.5
    assert power(-3, 3) == -27
