"""The model's mm/*.c: one module per kernel file, each importing only the headers (include/)
and the mm/ modules below it."""
