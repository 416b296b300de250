"""Resource providers. Importing `emulator.providers` registers every route and timer."""
import importlib
import pkgutil


def load_all():
    """Import every provider module (and sub-package) so their @route / @timer decorators run."""
    for info in pkgutil.walk_packages(__path__, prefix=__name__ + "."):
        importlib.import_module(info.name)
