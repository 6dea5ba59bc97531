"""The shipped de-identification profiles (TOML, read with importlib.resources)."""
