"""Builds shipper._logfmt, the C split of common logfmt lines. Metadata and dependencies: setup.cfg.

The extension is optional: where it cannot be compiled the install goes on and shipper.logfmt reads
every line in Python, the same records at about 0.65 of the speed (`make setup` installs a compiler).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("shipper._logfmt", ["shipper/_logfmt.c"], optional=True,
                             extra_compile_args=["-Wall", "-Wextra"])])
