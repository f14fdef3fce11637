"""python -m radix: prints the package version and where its native module was loaded from."""

from . import __version__, _core

print(f"radix {__version__} ({_core.__file__})")
