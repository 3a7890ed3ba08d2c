"""Maps the four top-level folders into one `qimage` namespace.

`train`, `synth` and `datapipe` are names other PyPI projects own, so they install as
`qimage.train`, `qimage.synth` and `qimage.datapipe` and never shadow another module.
"""
from setuptools import find_packages, setup

ROOTS = {"qimage": "qimage", "qimage.synth": "synth", "qimage.datapipe": "datapipe", "qimage.train": "train"}

packages, package_dir = [], {}
for name, folder in ROOTS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(where=folder) if f"{name}.{sub}" not in ROOTS]

setup(packages=packages, package_dir=package_dir)
