"""Bottom of the package: user-facing errors, the cache and data folders, atomic writes. Imports
nothing else of the plugin, and neither torch nor lm_eval."""
