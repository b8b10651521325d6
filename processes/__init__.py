"""The process definitions shipped with bpf, as YAML files (packaged as ``bpf.processes``).

Load them with `bpf.standard_process`; `bpf.standard_processes` lists them. The ``examples``
folder holds customizations to copy and adapt; load those with `bpf.load_process`.
"""
