"""The Jupyter server side: the extension, its handlers, the run engine, the event log,
the agent catalog and providers. Never imports deltakit_nb.kernel (another process)."""
