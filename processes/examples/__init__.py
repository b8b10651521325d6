"""Example process definitions to copy and adapt (load them with `bpf.load_process`)."""
