from pycalc import larger


def test_larger_either_way():
    assert larger(9, 3) == 9
    assert larger(3, 9) == 9
    assert larger(-2, -8) == -2
