# The C engine; everything else is declared in pyproject.toml.
from setuptools import Extension, setup

ENGINE = "src/engine/"  # not inside the package: a directory named _engine there would shadow the extension

setup(
    ext_modules=[
        Extension(
            "linuxaio._engine",
            sources=[ENGINE + f for f in ("completion.c", "pool.c", "workers.c", "ops.c", "results.c",
                                          "errors.c", "future.c", "args.c", "request.c", "group.c",
                                          "poll.c", "control.c")],
            depends=[ENGINE + f for f in ("completion.h", "pool.h", "backend.h", "ops.h", "ops.def",
                                          "future.h", "engine.h")],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers"],
            extra_link_args=["-pthread"],
        )
    ]
)
