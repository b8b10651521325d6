"""What a process is: the frozen model, its JSON Schema, YAML loading, semantic checks."""
