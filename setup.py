# The C engine; everything else is declared in pyproject.toml.
from glob import glob

from setuptools import Extension, setup

ENGINE = "src/engine/"  # not inside the package: a directory named _engine there would shadow the extension

setup(
    ext_modules=[
        Extension(
            "linuxaio._engine",
            # every C file there: a new family of run functions is a new file (ops_*.c)
            sources=sorted(glob(ENGINE + "*.c")),
            depends=sorted(glob(ENGINE + "*.h") + glob(ENGINE + "*.def")),
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers"],
            extra_link_args=["-pthread"],
        )
    ]
)
