"""Code that runs in the kernel process (never in the Jupyter server): agents that live in the
notebook and the tools that give them the notebook's data. It imports only the shared modules
at the top of the package (protocol, adapter, kernel_wire) and the kernel-side serverlink."""
