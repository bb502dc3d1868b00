"""Maps the top-level source folders onto the `readerhost` namespace.

daemon/ -> readerhost.daemon, drivers/ -> readerhost.drivers, sim/ -> readerhost.sim.
`readerhost` itself is an implicit namespace package (it has no folder of its own); its portion
readerhost.client is a distribution of its own, readerhost-client (clients/python/), which the
daemon depends on.
"""

from pathlib import Path

from setuptools import setup

SOURCE_FOLDERS = {
    "daemon": "readerhost.daemon",
    "drivers": "readerhost.drivers",
    "sim": "readerhost.sim",
}


def mapped_packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for folder, package in SOURCE_FOLDERS.items():
        package_dir[package] = folder
        for init in sorted(Path(folder).rglob("__init__.py")):
            relative = init.parent.relative_to(folder).parts
            packages.append(".".join((package, *relative)))
    return packages, package_dir


packages, package_dir = mapped_packages()
setup(packages=packages, package_dir=package_dir, package_data={"readerhost.sim": ["**/*.json"]})
