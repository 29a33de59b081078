"""Code both the API and the workers use: settings, storage, knowledge, models, answering."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("support-assistant")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
