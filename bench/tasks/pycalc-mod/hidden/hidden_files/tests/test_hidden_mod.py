from pycalc import mod


def test_mod_values():
    assert mod(7, 4) == 3
    assert mod(9, 3) == 0
    assert mod(10, 7) == 3
