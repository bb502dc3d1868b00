# Stubs for the parts of systemd-python (235) readerhost uses; the package ships none. They live
# here so that mypy finds them before the repository's own systemd/ folder of unit files.
