"""Built-in plugins. Each is registered through the ``omnicrm`` entry-point group in
pyproject.toml, exactly as a third-party plugin would be."""
