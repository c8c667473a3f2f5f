import pytest

from pycalc import add, divide, subtract
from pycalc.__main__ import main


def test_add():
    assert add(2, 3) == 5
    assert add(-1, 1) == 0
    assert add(0.5, 0.25) == 0.75


def test_subtract():
    assert subtract(10, 4) == 6
    assert subtract(4, 10) == -6


def test_divide():
    assert divide(9, 3) == 3
    assert divide(1, 4) == 0.25


def test_divide_by_zero_raises():
    with pytest.raises(ValueError, match="divide by zero"):
        divide(1, 0)


def test_cli_add_prints_result(capsys):
    assert main(["add", "2", "3"]) == 0
    assert capsys.readouterr().out == "5\n"


def test_cli_divide_by_zero_fails(capsys):
    assert main(["div", "1", "0"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "cannot divide by zero" in captured.err
