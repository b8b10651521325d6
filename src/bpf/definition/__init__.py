"""What a process is: the frozen model, the JSON Schema, YAML loading with marks, semantic checks."""
