"""The optional C accelerator of `parse`'s block scanner; every other setting is in pyproject.toml.

`optional=True`: where it cannot be compiled (no compiler, no Python headers) the build goes on
without it and exporter.commands.parse.scanner uses its block patterns alone, with the same results
(its tests then skip). The daemon never uses it.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("exporter.commands.parse._shapes", ["exporter/commands/parse/_shapes.c"], optional=True),
    ],
)
