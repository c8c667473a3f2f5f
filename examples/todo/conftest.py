# Lives at the project root on purpose: pytest puts this directory on sys.path,
# so the tests can `import todo` without installing the package.
