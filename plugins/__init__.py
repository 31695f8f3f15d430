"""magpie-hub's built-in plugins. They register through the same hooks as any other plugin."""
