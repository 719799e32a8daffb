"""Package data: the application icon (SVG plus PNG sizes), read through ``importlib.resources``."""
