# Lives at the project root on purpose: pytest puts this directory on sys.path,
# so the tests can `import pycalc` without installing the package.
