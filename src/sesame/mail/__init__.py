"""Building the messages Sesame sends: template rendering and related mail helpers."""
